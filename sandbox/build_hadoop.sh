#!/usr/bin/env bash
# Build the sandbox mirror's Hadoop: MIRROR/hadoop/common/hadoop-2.7.3/hadoop-2.7.3.tar.gz
# (+ .sha512, sha512sum format), laid out like Apache's binary release, HDFS only.
#
# What is in it:
#   - Apache Hadoop 2.7.3's own jars (hadoop-common, -auth, -annotations, -hdfs) and the
#     third-party jars they run with, as shipped by the PyPI pyspark==2.4.8 source release in
#     pyspark-2.4.8/deps/jars/ (no compilation). Third-party jars are picked by an ALLOW-LIST
#     (LIB_JARS below): Apache 2.7.3's share/hadoop/{common,hdfs}/lib lists, intersected
#     with what the sdist ships, minus the jars that serve only features this build does
#     not offer (Kerberos keytabs/apacheds, ZooKeeper failover/curator, Avro files and
#     serialization, ssh fencing, S3, the offline image/edits viewers' LevelDB and Xerces,
#     tests) and minus what Java 17 does not need (jackson-jaxrs/-xc, activation, stax:
#     WebHDFS answers without them; jaxb-api it does need).
#   - Debian's Jersey 1 + JSR-311 jars (libjersey1-*-java, libjsr311-api-java): Hadoop 2.7's
#     WebHDFS is JAX-RS on Jersey 1; pyspark's Jersey 2 / hk2 jars cannot stand in for it.
#   - bin/hdfs, bin/hadoop: the project's own launchers (Apache's scripts are in no registry
#     these machines reach), speaking the Hadoop 3 command forms (hdfs --daemon start ...).
#   - No YARN: no ResourceManager/NodeManager exists in any registry here, so there is no
#     bin/yarn and no sbin/start-yarn.sh.
# Usage: build_hadoop.sh PYSPARK_2_4_8_SDIST MIRROR_DIR
# Idempotent: skips when the tarball and its .sha512 exist and were built by this very
# script (its sha256 is kept in .build-hash beside the tarball).
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 PYSPARK_2_4_8_SDIST MIRROR_DIR" >&2; exit 2; }
SDIST=$1; MIRROR=$2
HV=2.7.3; PV=2.4.8
NAME=hadoop-$HV
OUT=$MIRROR/hadoop/common/$NAME
SELF=$(readlink -f "${BASH_SOURCE[0]}")
STAMP=$(sha256sum "$SELF" | cut -d' ' -f1)
if [ -s "$OUT/$NAME.tar.gz" ] && [ -s "$OUT/$NAME.tar.gz.sha512" ] \
   && [ "$(cat "$OUT/.build-hash" 2>/dev/null)" = "$STAMP" ]; then
  echo "mirror: $OUT/$NAME.tar.gz already built"; exit 0
fi
[ -s "$SDIST" ] || { echo "build_hadoop: $SDIST is missing" >&2; exit 1; }
DEB_JARS="jersey1-core jersey1-server jersey1-servlet jsr311-api"
for j in $DEB_JARS; do
  [ -e "/usr/share/java/$j.jar" ] || { echo "build_hadoop: /usr/share/java/$j.jar is missing" \
    "(apt-get install libjersey1-core-java libjersey1-server-java libjersey1-servlet-java libjsr311-api-java)" >&2; exit 1; }
done

# Hadoop's own jars
HADOOP_JARS="hadoop-common-$HV hadoop-auth-$HV hadoop-annotations-$HV hadoop-hdfs-$HV"
# third-party jars for common + HDFS (patterns on file names in deps/jars/)
LIB_JARS="
  commons-cli-1.* commons-codec-* commons-collections-3.* commons-io-* commons-lang-2.*
  commons-logging-* commons-configuration-1.* commons-digester-* commons-beanutils-*
  commons-math3-* commons-compress-* commons-net-*
  guava-* protobuf-java-2.5.* htrace-core-* xmlenc-* jsr305-* gson-*
  log4j-1.2.* slf4j-api-* slf4j-log4j12-*
  jetty-6.* jetty-util-6.* javax.servlet-api-3.* jsp-api-2.*
  jackson-core-asl-* jackson-mapper-asl-* jaxb-api-2.*
  httpclient-4.* httpcore-4.* commons-httpclient-3.*
  netty-all-4.*
"
WORK=$(mktemp -d "${MIRROR%/}.hadoop-build.XXXXXX"); trap 'rm -rf "$WORK"' EXIT
J=pyspark-$PV/deps/jars
pats=()
for p in $HADOOP_JARS $LIB_JARS; do pats+=("$J/$p.jar"); done
# one pass over the 220 MB sdist, extracting only the wanted jars
tar -C "$WORK" -xzf "$SDIST" --wildcards --no-wildcards-match-slash "${pats[@]}"
for p in $HADOOP_JARS $LIB_JARS; do
  compgen -G "$WORK/$J/$p.jar" >/dev/null || { echo "build_hadoop: no $p.jar in $SDIST" >&2; exit 1; }
done

H=$WORK/$NAME
mkdir -p "$H"/{bin,libexec,etc/hadoop,share/hadoop/common/lib,share/hadoop/hdfs/lib}
for j in hadoop-common hadoop-auth hadoop-annotations; do mv "$WORK/$J/$j-$HV.jar" "$H/share/hadoop/common/"; done
mv "$WORK/$J/hadoop-hdfs-$HV.jar" "$H/share/hadoop/hdfs/"
mv "$WORK/$J"/*.jar "$H/share/hadoop/common/lib/"
for j in $DEB_JARS; do  # real files (not /usr/share/java's links), named with their version
  named=$(ls /usr/share/java/"$j"-[0-9]*.jar 2>/dev/null | head -1)
  cp -L "/usr/share/java/$j.jar" "$H/share/hadoop/common/lib/$(basename "${named:-$j.jar}")"
done
# the HTTP servers look for webapps/<name>/ on the classpath (share/hadoop/hdfs is on it)
for w in hdfs datanode secondary; do
  mkdir -p "$H/share/hadoop/hdfs/webapps/$w/WEB-INF"
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<web-app/>\n' > "$H/share/hadoop/hdfs/webapps/$w/WEB-INF/web.xml"
done
# Apache's LICENSE and NOTICE for the Hadoop release, as carried inside hadoop-common's jar
python3 - "$H/share/hadoop/common/hadoop-common-$HV.jar" "$H" <<'EOS'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in ("LICENSE.txt", "NOTICE.txt"):
        open(f"{sys.argv[2]}/{n}", "wb").write(z.read(f"META-INF/{n}"))
EOS

cat > "$H/RELEASE" <<EOS
Apache Hadoop $HV, HDFS only, assembled by the spark-openstack sandbox (sandbox/build_hadoop.sh).

- share/hadoop/common/hadoop-{common,auth,annotations}-$HV.jar, share/hadoop/hdfs/hadoop-hdfs-$HV.jar
  and the third-party jars in share/hadoop/common/lib are Apache Hadoop $HV's own jars (and
  the library jars they run with) as shipped by the PyPI pyspark==$PV source distribution in
  pyspark-$PV/deps/jars/. Nothing was compiled.
- $(echo $DEB_JARS | sed 's/ /, /g') (.jar) come from Debian's libjersey1-*-java and
  libjsr311-api-java packages: WebHDFS needs Jersey 1 (JAX-RS 1.1) on Java 17.
- bin/hdfs, bin/hadoop and libexec/ are the spark-openstack project's own launchers (not
  Apache's scripts), accepting the Hadoop 3 command forms (hdfs --daemon start namenode, ...).
- HDFS only: no YARN daemons are available from any registry here (no ResourceManager, no
  NodeManager, no bin/yarn, no sbin/start-yarn.sh).
- Hadoop $HV defaults differ from 3.x: set every port explicitly (NameNode HTTP 50070,
  DataNode 50010/50020/50075 by default).
EOS
printf '<?xml version="1.0"?>\n<configuration>\n</configuration>\n' > "$H/etc/hadoop/core-site.xml"
cp "$H/etc/hadoop/core-site.xml" "$H/etc/hadoop/hdfs-site.xml"
echo localhost > "$H/etc/hadoop/workers"
printf '# metrics2 sinks (none configured)\n*.period=10\n' > "$H/etc/hadoop/hadoop-metrics2.properties"
cat > "$H/etc/hadoop/hadoop-env.sh" <<'EOS'
# Environment of the spark-openstack sandbox launchers (bin/hdfs, bin/hadoop), sourced by
# them. Honoured (Hadoop 3 names): JAVA_HOME, HADOOP_CONF_DIR, HADOOP_LOG_DIR (default
# $HADOOP_HOME/logs), HADOOP_PID_DIR (default /tmp), HADOOP_IDENT_STRING (default $USER),
# HADOOP_HEAPSIZE_MAX (256m, 1g, or a number of MB), HADOOP_OPTS, HDFS_NAMENODE_OPTS,
# HDFS_DATANODE_OPTS, HDFS_SECONDARYNAMENODE_OPTS, HADOOP_CLIENT_OPTS, HADOOP_STOP_TIMEOUT,
# HADOOP_ROOT_LOGGER, HADOOP_DAEMON_ROOT_LOGGER, HADOOP_CLASSPATH.
# export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
if [ -z "${JAVA_HOME:-}" ] && command -v java >/dev/null 2>&1; then
  JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  export JAVA_HOME
fi
EOS
cat > "$H/etc/hadoop/log4j.properties" <<'EOS'
# log4j 1.2 configuration of the Hadoop daemons and clients (after Apache's; the launchers
# set hadoop.root.logger: INFO,RFA for daemons, WARN,console for client commands)
hadoop.root.logger=INFO,console
hadoop.log.dir=.
hadoop.log.file=hadoop.log
log4j.rootLogger=${hadoop.root.logger}, EventCounter
log4j.threshold=ALL
log4j.appender.NullAppender=org.apache.log4j.varia.NullAppender

# rolling file appender
hadoop.log.maxfilesize=256MB
hadoop.log.maxbackupindex=20
log4j.appender.RFA=org.apache.log4j.RollingFileAppender
log4j.appender.RFA.File=${hadoop.log.dir}/${hadoop.log.file}
log4j.appender.RFA.MaxFileSize=${hadoop.log.maxfilesize}
log4j.appender.RFA.MaxBackupIndex=${hadoop.log.maxbackupindex}
log4j.appender.RFA.layout=org.apache.log4j.PatternLayout
log4j.appender.RFA.layout.ConversionPattern=%d{ISO8601} %p %c: %m%n

# console (stderr, so the stdout of client commands stays parseable)
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{yy/MM/dd HH:mm:ss} %p %c{2}: %m%n

# security and audit logs (off unless asked for)
hadoop.security.logger=INFO,NullAppender
log4j.category.SecurityLogger=${hadoop.security.logger}
hdfs.audit.logger=INFO,NullAppender
log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=${hdfs.audit.logger}
log4j.additivity.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=false

log4j.appender.EventCounter=org.apache.hadoop.log.metrics.EventCounter
# no native-hadoop library in this build: say so once per daemon, not on every client command
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
EOS

# ---------------------------------------------------------------- the launchers
cat > "$H/libexec/sbx-hadoop-launcher.sh" <<'EOS'
# spark-openstack sandbox launcher over Apache Hadoop 2.7.3's jars (not Apache's script).
# Shared code of bin/hdfs and bin/hadoop: options, environment, classpath, JVM flags, and
# the daemon handling of Hadoop 3's `hdfs --daemon start|stop|status NAME`.

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
      --workers|--hostnames|--hosts|--debug) sbx_die "$1 is not supported by this launcher" ;;
      --*) sbx_usage >&2; sbx_die "unknown option $1" ;;
      *) break ;;
    esac
  done
  SBX_ARGS=("$@")
  case $SBX_DAEMON_MODE in ''|start|stop|status) ;; *) sbx_die "--daemon $SBX_DAEMON_MODE: use start, stop or status" ;; esac
  [ -d "${HADOOP_CONF_DIR:=$HADOOP_HOME/etc/hadoop}" ] || sbx_die "HADOOP_CONF_DIR $HADOOP_CONF_DIR is not a directory"
  export HADOOP_HOME HADOOP_CONF_DIR
  # shellcheck disable=SC1091
  [ -f "$HADOOP_CONF_DIR/hadoop-env.sh" ] && . "$HADOOP_CONF_DIR/hadoop-env.sh"
  : "${HADOOP_LOG_DIR:=$HADOOP_HOME/logs}" "${HADOOP_PID_DIR:=/tmp}" "${HADOOP_STOP_TIMEOUT:=5}"
  [ -n "${HADOOP_IDENT_STRING:-}" ] || HADOOP_IDENT_STRING=${USER:-$(id -un)}
  export HADOOP_LOG_DIR HADOOP_PID_DIR HADOOP_IDENT_STRING
  if [ -n "${JAVA_HOME:-}" ]; then
    [ -x "$JAVA_HOME/bin/java" ] || sbx_die "JAVA_HOME $JAVA_HOME has no bin/java"
    SBX_JAVA=$JAVA_HOME/bin/java
  else
    SBX_JAVA=$(command -v java) || sbx_die "JAVA_HOME is not set and no java is on PATH"
  fi
  local share=$HADOOP_HOME/share/hadoop
  SBX_CLASSPATH="$HADOOP_CONF_DIR:$share/common/lib/*:$share/common/*:$share/hdfs:$share/hdfs/lib/*:$share/hdfs/*${HADOOP_CLASSPATH:+:$HADOOP_CLASSPATH}"
}

# daemons' -Xmx from Hadoop 3's HADOOP_HEAPSIZE_MAX (or Hadoop 2's HADOOP_HEAPSIZE): 256m, 1g, 512 (MB)
sbx_heap() {
  local h=${HADOOP_HEAPSIZE_MAX:-${HADOOP_HEAPSIZE:-}}
  [ -n "$h" ] || return 0
  case $h in
    *[!0-9]*) echo "-Xmx$h" ;;
    *) echo "-Xmx${h}m" ;;
  esac
}

# JVM flags every command gets. Hadoop 2.7.3's HDFS on Java 17 needs no --add-opens (tested:
# format, NameNode, DataNode, SecondaryNameNode checkpoint, dfs put/cat, WebHDFS, fsck).
sbx_base_opts() {
  SBX_JVM=(-Djava.net.preferIPv4Stack=true
    -Dhadoop.home.dir="$HADOOP_HOME" -Dhadoop.id.str="$HADOOP_IDENT_STRING"
    -Dhadoop.policy.file=hadoop-policy.xml
    -Dhadoop.security.logger="${HADOOP_SECURITY_LOGGER:-INFO,NullAppender}")
}

# sbx_client CLASS ARGS... : a client command in the foreground (stdout stays parseable)
sbx_client() {
  local class=$1; shift
  sbx_base_opts
  local logger=${HADOOP_ROOT_LOGGER:-WARN,console}
  [ -n "${SBX_LOGLEVEL:-}" ] && logger=$SBX_LOGLEVEL,console
  # -Xmx256m unless HADOOP_CLIENT_OPTS (later on the line, so it wins) sets a heap
  # shellcheck disable=SC2086
  exec "$SBX_JAVA" -Xmx256m "${SBX_JVM[@]}" -Dhadoop.log.dir="$HADOOP_LOG_DIR" \
    -Dhadoop.log.file=hadoop.log -Dhadoop.root.logger="$logger" \
    ${HADOOP_OPTS:-} ${HADOOP_CLIENT_OPTS:-} -cp "$SBX_CLASSPATH" "$class" "$@"
}

# sbx_daemon NAME CLASS OPTS-VALUE ARGS... : a daemon, in the foreground or per --daemon
sbx_daemon() {
  local name=$1 class=$2 dopts=$3; shift 3
  sbx_base_opts
  local pidfile=$HADOOP_PID_DIR/hadoop-$HADOOP_IDENT_STRING-$name.pid
  local base=$HADOOP_LOG_DIR/hadoop-$HADOOP_IDENT_STRING-$name-$(hostname)
  local logger=${HADOOP_ROOT_LOGGER:-INFO,console}
  [ -n "$SBX_DAEMON_MODE" ] && logger=${HADOOP_DAEMON_ROOT_LOGGER:-INFO,RFA}
  [ -n "${SBX_LOGLEVEL:-}" ] && logger=$SBX_LOGLEVEL,${logger#*,}
  # shellcheck disable=SC2086
  local cmd=("$SBX_JAVA" -Dproc_$name $(sbx_heap) "${SBX_JVM[@]}" -Dhadoop.log.dir="$HADOOP_LOG_DIR"
    -Dhadoop.log.file="$(basename "$base").log" -Dhadoop.root.logger="$logger"
    ${HADOOP_OPTS:-} $dopts -cp "$SBX_CLASSPATH" "$class" "$@")
  case $SBX_DAEMON_MODE in
    '') exec "${cmd[@]}" ;;
    status)
      # as Hadoop 3.4's hadoop_daemon_handler: the message tells, the exit status is always 0
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
EOS

launcher_head() {  # launcher_head WHAT
  cat <<EOS
#!/usr/bin/env bash
# spark-openstack sandbox launcher over Apache Hadoop 2.7.3's jars (not Apache's script).
# $1
# Settings: see etc/hadoop/hadoop-env.sh and this distribution's RELEASE file.
set -uo pipefail
HADOOP_HOME=\${HADOOP_HOME:-\$(cd "\$(dirname "\$(readlink -f "\${BASH_SOURCE[0]}")")/.." && pwd)}
. "\$HADOOP_HOME/libexec/sbx-hadoop-launcher.sh"
EOS
}
{ launcher_head "The HDFS daemons (foreground or hdfs --daemon start|stop|status NAME) and HDFS clients."
  cat <<'EOS'
sbx_usage() {
  cat <<'U'
Usage: hdfs [--config confdir] [--loglevel level] [--daemon (start|status|stop)] SUBCOMMAND [args]
  Daemons:  namenode [-format [-clusterid ID] [-force] [-nonInteractive]] | datanode | secondarynamenode
  Clients:  dfs | dfsadmin | fsck | getconf | groups | balancer | oiv | haadmin | jmxget | classpath | version
(spark-openstack sandbox launcher over Apache Hadoop 2.7.3's jars; HDFS only)
U
}
sbx_init hdfs "$@"
set -- "${SBX_ARGS[@]}"
[ $# -ge 1 ] || { sbx_usage >&2; exit 1; }
sub=$1; shift
case $sub in
  namenode|datanode|secondarynamenode) ;;
  *) [ -z "$SBX_DAEMON_MODE" ] || sbx_die "--daemon works with namenode, datanode and secondarynamenode only" ;;
esac
case $sub in
  namenode) sbx_daemon namenode org.apache.hadoop.hdfs.server.namenode.NameNode "${HDFS_NAMENODE_OPTS:-}" "$@" ;;
  datanode) sbx_daemon datanode org.apache.hadoop.hdfs.server.datanode.DataNode "${HDFS_DATANODE_OPTS:-}" "$@" ;;
  secondarynamenode) sbx_daemon secondarynamenode org.apache.hadoop.hdfs.server.namenode.SecondaryNameNode \
    "${HDFS_SECONDARYNAMENODE_OPTS:-}" "$@" ;;
  dfs) sbx_client org.apache.hadoop.fs.FsShell "$@" ;;
  dfsadmin) sbx_client org.apache.hadoop.hdfs.tools.DFSAdmin "$@" ;;
  fsck) sbx_client org.apache.hadoop.hdfs.tools.DFSck "$@" ;;
  getconf) sbx_client org.apache.hadoop.hdfs.tools.GetConf "$@" ;;
  groups) sbx_client org.apache.hadoop.hdfs.tools.GetGroups "$@" ;;
  balancer) sbx_client org.apache.hadoop.hdfs.server.balancer.Balancer "$@" ;;
  oiv) sbx_client org.apache.hadoop.hdfs.tools.offlineImageViewer.OfflineImageViewerPB "$@" ;;
  haadmin) sbx_client org.apache.hadoop.hdfs.tools.DFSHAAdmin "$@" ;;
  jmxget) sbx_client org.apache.hadoop.hdfs.tools.JMXGet "$@" ;;
  version) sbx_client org.apache.hadoop.util.VersionInfo "$@" ;;
  classpath) echo "$SBX_CLASSPATH" ;;
  *) sbx_usage >&2; echo "ERROR: hdfs $sub is not a subcommand of this launcher" >&2; exit 1 ;;
esac
EOS
} > "$H/bin/hdfs"
{ launcher_head "Hadoop's generic commands (fs, version, classpath, jar, ...); HDFS daemons are bin/hdfs's."
  cat <<'EOS'
sbx_usage() {
  cat <<'U'
Usage: hadoop [--config confdir] [--loglevel level] SUBCOMMAND [args]
  fs | version | classpath | jar JAR [MAINCLASS] args | checknative | daemonlog | CLASSNAME
(spark-openstack sandbox launcher over Apache Hadoop 2.7.3's jars; HDFS only: no YARN, no MapReduce)
U
}
sbx_init hadoop "$@"
set -- "${SBX_ARGS[@]}"
[ $# -ge 1 ] || { sbx_usage >&2; exit 1; }
[ -z "$SBX_DAEMON_MODE" ] || sbx_die "hadoop --daemon: use hdfs --daemon (start|stop|status) namenode|datanode|secondarynamenode"
sub=$1; shift
case $sub in
  fs|dfs) sbx_client org.apache.hadoop.fs.FsShell "$@" ;;
  version) sbx_client org.apache.hadoop.util.VersionInfo "$@" ;;
  jar) sbx_client org.apache.hadoop.util.RunJar "$@" ;;
  checknative) sbx_client org.apache.hadoop.util.NativeLibraryChecker "$@" ;;
  daemonlog) sbx_client org.apache.hadoop.log.LogLevel "$@" ;;
  classpath) echo "$SBX_CLASSPATH" ;;
  namenode|datanode|secondarynamenode|dfsadmin|fsck) exec "$HADOOP_HOME/bin/hdfs" "$sub" "$@" ;;
  *[!A-Za-z0-9_.\$]*|[!A-Za-z_]*) sbx_usage >&2; echo "ERROR: hadoop $sub is not a subcommand" >&2; exit 1 ;;
  *.*) sbx_client "$sub" "$@" ;;
  *) sbx_usage >&2; echo "ERROR: hadoop $sub is not a subcommand of this launcher" >&2; exit 1 ;;
esac
EOS
} > "$H/bin/hadoop"
chmod 755 "$H/bin/hdfs" "$H/bin/hadoop"
chmod 644 "$H/libexec/sbx-hadoop-launcher.sh"
bash -n "$H/bin/hdfs" && bash -n "$H/bin/hadoop" && bash -n "$H/libexec/sbx-hadoop-launcher.sh"

mkdir -p "$OUT"
tar -C "$WORK" --owner=0 --group=0 --numeric-owner -czf "$OUT/$NAME.tar.gz.part" "$NAME"
mv "$OUT/$NAME.tar.gz.part" "$OUT/$NAME.tar.gz"
(cd "$OUT" && sha512sum "$NAME.tar.gz" > "$NAME.tar.gz.sha512")
echo "$STAMP" > "$OUT/.build-hash"
echo "mirror: built $OUT/$NAME.tar.gz ($(du -h "$OUT/$NAME.tar.gz" | cut -f1), $(ls "$H/share/hadoop/common/lib" | wc -l) library jars)"
