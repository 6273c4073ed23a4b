# Sourced by bin/mapred after hadoop-env.sh (MAPRED_* settings), as Apache's mapred-env.sh is.
