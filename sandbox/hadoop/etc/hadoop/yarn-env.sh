# Sourced by bin/yarn after hadoop-env.sh (YARN_* settings), as Apache's yarn-env.sh is.
