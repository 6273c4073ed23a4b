# spark-openstack sandbox launcher over Apache Hadoop 3's jars (the project's own script, not
# Apache's: those are on no registry these machines reach). Shared code of bin/hadoop,
# bin/hdfs, bin/yarn and bin/mapred: options, environment, classpath, JVM flags, and the
# daemon handling of Apache 3.x's `CMD --daemon start|stop|status NAME`.
# It behaves as Apache 3.x's hadoop-functions.sh does where a caller can tell:
#   pid file  $HADOOP_PID_DIR/hadoop-$HADOOP_IDENT_STRING-NAME.pid
#   logs      $HADOOP_LOG_DIR/hadoop-$HADOOP_IDENT_STRING-NAME-$(hostname).{log,out}
#   status    prints "NAME is running as process N." or "NAME is stopped.", exits 0 either way
#   start     refuses (exit 1) while the daemon runs; stop TERMs, then KILLs after
#             HADOOP_STOP_TIMEOUT seconds

sbx_die() { echo "ERROR: $*" >&2; exit 1; }

# sbx_init CMDNAME ARGS... : parses --config/--daemon/--loglevel, sets SBX_ARGS
sbx_init() {
  SBX_CMD=$1; shift
  SBX_DAEMON_MODE=
  while [ $# -gt 0 ]; do
    case $1 in
      --config) [ $# -ge 2 ] || sbx_die "--config needs a directory"; HADOOP_CONF_DIR=$2; shift 2 ;;
      --config=*) HADOOP_CONF_DIR=${1#--config=}; shift ;;
      --daemon) [ $# -ge 2 ] || sbx_die "--daemon needs start, stop or status"; SBX_DAEMON_MODE=$2; shift 2 ;;
      --loglevel) [ $# -ge 2 ] || sbx_die "--loglevel needs a level"; SBX_LOGLEVEL=$2; shift 2 ;;
      --help|-h|-help) sbx_usage; exit 0 ;;
      --workers|--hostnames|--hosts|--debug|--buildpaths) sbx_die "$1 is not supported by this launcher" ;;
      --*) sbx_usage >&2; sbx_die "unknown option $1" ;;
      *) break ;;
    esac
  done
  SBX_ARGS=("$@")
  case $SBX_DAEMON_MODE in ''|start|stop|status) ;; *) sbx_die "--daemon $SBX_DAEMON_MODE: use start, stop or status" ;; esac
  [ -d "${HADOOP_CONF_DIR:=$HADOOP_HOME/etc/hadoop}" ] || sbx_die "HADOOP_CONF_DIR $HADOOP_CONF_DIR is not a directory"
  # as Apache's: every component's home is this release unless the caller says otherwise
  : "${HADOOP_COMMON_HOME:=$HADOOP_HOME}" "${HADOOP_HDFS_HOME:=$HADOOP_HOME}"
  : "${HADOOP_YARN_HOME:=$HADOOP_HOME}" "${HADOOP_MAPRED_HOME:=$HADOOP_HOME}"
  export HADOOP_HOME HADOOP_CONF_DIR HADOOP_COMMON_HOME HADOOP_HDFS_HOME HADOOP_YARN_HOME HADOOP_MAPRED_HOME
  # shellcheck disable=SC1091
  [ -f "$HADOOP_CONF_DIR/hadoop-env.sh" ] && . "$HADOOP_CONF_DIR/hadoop-env.sh"
  case $SBX_CMD in
    yarn) [ -f "$HADOOP_CONF_DIR/yarn-env.sh" ] && . "$HADOOP_CONF_DIR/yarn-env.sh" ;;
    mapred) [ -f "$HADOOP_CONF_DIR/mapred-env.sh" ] && . "$HADOOP_CONF_DIR/mapred-env.sh" ;;
  esac
  : "${HADOOP_LOG_DIR:=$HADOOP_HOME/logs}" "${HADOOP_PID_DIR:=/tmp}" "${HADOOP_STOP_TIMEOUT:=5}"
  [ -n "${HADOOP_IDENT_STRING:-}" ] || HADOOP_IDENT_STRING=${USER:-$(id -un)}
  export HADOOP_LOG_DIR HADOOP_PID_DIR HADOOP_IDENT_STRING
  if [ -n "${JAVA_HOME:-}" ]; then
    [ -x "$JAVA_HOME/bin/java" ] || sbx_die "JAVA_HOME $JAVA_HOME has no bin/java"
    SBX_JAVA=$JAVA_HOME/bin/java
  else
    SBX_JAVA=$(command -v java) || sbx_die "JAVA_HOME is not set and no java is on PATH"
    JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$SBX_JAVA")")")
  fi
  export JAVA_HOME
  local s=$HADOOP_HOME/share/hadoop
  # the order of Apache's `hadoop classpath`
  SBX_CLASSPATH="$HADOOP_CONF_DIR:$s/common/lib/*:$s/common/*:$s/hdfs:$s/hdfs/lib/*:$s/hdfs/*"
  SBX_CLASSPATH="$SBX_CLASSPATH:$s/mapreduce/*:$s/yarn:$s/yarn/lib/*:$s/yarn/*"
  SBX_CLASSPATH="$SBX_CLASSPATH${HADOOP_CLASSPATH:+:$HADOOP_CLASSPATH}"
}

# sbx_heap MAX: -Xmx from Hadoop 3's HADOOP_HEAPSIZE_MAX / YARN_*_HEAPSIZE forms: 256m, 1g, 512 (MB)
sbx_heap() {
  local h=${1:-}
  [ -n "$h" ] || return 0
  case $h in
    *[!0-9]*) echo "-Xmx$h" ;;
    *) echo "-Xmx${h}m" ;;
  esac
}

sbx_base_opts() {
  SBX_JVM=(-Djava.net.preferIPv4Stack=true
    -Dhadoop.home.dir="$HADOOP_HOME" -Dhadoop.id.str="$HADOOP_IDENT_STRING"
    -Dyarn.home.dir="$HADOOP_YARN_HOME" -Dyarn.log.dir="$HADOOP_LOG_DIR"
    -Dhadoop.policy.file=hadoop-policy.xml
    -Dhadoop.security.logger="${HADOOP_SECURITY_LOGGER:-INFO,NullAppender}")
}

# sbx_client CLASS ARGS... : a client command in the foreground (stdout stays parseable)
sbx_client() {
  local class=$1; shift
  sbx_base_opts
  local logger=${HADOOP_ROOT_LOGGER:-INFO,console}
  [ -n "${SBX_LOGLEVEL:-}" ] && logger=$SBX_LOGLEVEL,console
  # shellcheck disable=SC2086
  exec "$SBX_JAVA" $(sbx_heap "${HADOOP_HEAPSIZE_MAX:-}") "${SBX_JVM[@]}" -Dhadoop.log.dir="$HADOOP_LOG_DIR" \
    -Dhadoop.log.file=hadoop.log -Dhadoop.root.logger="$logger" \
    ${HADOOP_OPTS:-} ${SBX_EXTRA_OPTS:-} ${HADOOP_CLIENT_OPTS:-} -cp "$SBX_CLASSPATH" "$class" "$@"
}

# sbx_daemon NAME CLASS OPTS-VALUE HEAP ARGS... : a daemon, in the foreground or per --daemon
sbx_daemon() {
  local name=$1 class=$2 dopts=$3 heap=$4; shift 4
  sbx_base_opts
  local pidfile=$HADOOP_PID_DIR/hadoop-$HADOOP_IDENT_STRING-$name.pid
  local base=$HADOOP_LOG_DIR/hadoop-$HADOOP_IDENT_STRING-$name-$(hostname)
  local logger=${HADOOP_ROOT_LOGGER:-INFO,console}
  [ -n "$SBX_DAEMON_MODE" ] && logger=${HADOOP_DAEMON_ROOT_LOGGER:-INFO,RFA}
  [ -n "${SBX_LOGLEVEL:-}" ] && logger=$SBX_LOGLEVEL,${logger#*,}
  # shellcheck disable=SC2086
  local cmd=("$SBX_JAVA" -Dproc_$name $(sbx_heap "$heap") "${SBX_JVM[@]}" -Dhadoop.log.dir="$HADOOP_LOG_DIR"
    -Dhadoop.log.file="$(basename "$base").log" -Dyarn.log.file="$(basename "$base").log"
    -Dhadoop.root.logger="$logger" -Dyarn.root.logger="$logger"
    ${HADOOP_OPTS:-} $dopts -cp "$SBX_CLASSPATH" "$class" "$@")
  case $SBX_DAEMON_MODE in
    '') exec "${cmd[@]}" ;;
    status)
      if sbx_alive "$pidfile" "$name"; then echo "$name is running as process $(cat "$pidfile")."
      else echo "$name is stopped."; fi
      exit 0 ;;
    start)
      if sbx_alive "$pidfile" "$name"; then
        echo "$name is running as process $(cat "$pidfile").  Stop it first." >&2; exit 1
      fi
      mkdir -p "$HADOOP_LOG_DIR" "$HADOOP_PID_DIR" || sbx_die "cannot create $HADOOP_LOG_DIR or $HADOOP_PID_DIR"
      rm -f "$pidfile"
      [ -f "$base.out" ] && mv -f "$base.out" "$base.out.1"
      set +m  # the background job stays in our process group, so setsid does not fork
      setsid "${cmd[@]}" >"$base.out" 2>&1 </dev/null &
      local pid=$!
      echo "$pid" > "$pidfile" || sbx_die "cannot write $pidfile"
      sleep 2
      if ! sbx_running "$pid"; then
        rm -f "$pidfile"
        echo "ERROR: $name (process $pid) exited at start; the end of $base.out and .log:" >&2
        tail -n 20 "$base.out" >&2
        [ ! -f "$base.log" ] || tail -n 20 "$base.log" >&2
        # the cause is rarely in the last lines (a stack trace, then SHUTDOWN_MSG)
        if [ -f "$base.log" ] && grep -qE '^Caused by:|ERROR|FATAL' "$base.log"; then
          echo "ERROR: $name's errors in $base.log:" >&2
          grep -E '^Caused by:|ERROR|FATAL' "$base.log" | tail -n 10 | cut -c1-400 >&2
        fi
        exit 1
      fi
      exit 0 ;;
    stop)
      if ! sbx_alive "$pidfile" "$name"; then
        rm -f "$pidfile"; echo "no $name to stop"; exit 0
      fi
      local pid; pid=$(cat "$pidfile")
      kill -TERM "$pid" 2>/dev/null
      local i
      for ((i = 0; i < HADOOP_STOP_TIMEOUT * 5; i++)); do
        sbx_running "$pid" || break
        sleep 0.2
      done
      if sbx_running "$pid"; then
        echo "WARNING: $name did not stop gracefully after $HADOOP_STOP_TIMEOUT seconds: Trying to kill with kill -9" >&2
        kill -KILL "$pid" 2>/dev/null
      fi
      rm -f "$pidfile"
      exit 0 ;;
  esac
}

# sbx_no_daemon SUB: --daemon is for daemons only
sbx_no_daemon() {
  [ -z "$SBX_DAEMON_MODE" ] || sbx_die "$SBX_CMD --daemon works with this command's daemons only, not $1"
}

# sbx_running PID: the process exists and is not a zombie
sbx_running() {
  kill -0 "$1" 2>/dev/null || return 1
  [ ! -r "/proc/$1/stat" ] || [ "$(sed -E 's/^.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# sbx_alive PIDFILE NAME: the pid file names a live process of this daemon
sbx_alive() {
  local pid
  [ -f "$1" ] && pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && sbx_running "$pid" || return 1
  [ -d "/proc/$pid" ] || return 0  # no /proc: trust the pid
  # a recycled pid is not our daemon
  tr '\0' '\n' 2>/dev/null < "/proc/$pid/cmdline" | grep -qx -- "-Dproc_$2"
}
