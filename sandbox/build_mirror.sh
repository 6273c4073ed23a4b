#!/usr/bin/env bash
# Build the sandbox's artifact mirror, laid out like Apache's download site:
#   MIRROR/spark/spark-V/spark-V-bin-hadoop3.tgz (+ .sha512, sha512sum format)
# Spark comes from the PyPI `pyspark` source release (its deps/ holds Spark's bin, sbin,
# jars, examples, data; lib/ holds pyspark.zip and py4j). The pyspark distribution has no
# start-master.sh / start-worker.sh / stop-*.sh (only spark-daemon.sh): small scripts over
# spark-daemon.sh are added, marked as the sandbox's own.
# Hadoop is not built here: sandbox/up puts one release under MIRROR/hadoop/common/ (by
# default build_hadoop.py's Hadoop 3 from Maven Central) and passes its version and a note for the index.
# Usage: build_mirror.sh SDIST MIRROR_DIR [HADOOP_VERSION [HADOOP_NOTE]]
# (idempotent: skips the Spark build when the tarball exists; index.html is written every run)
set -euo pipefail
SDIST=$1; MIRROR=$2; HADOOP_VERSION=${3:-}; HADOOP_NOTE=${4:-}
VER=$(basename "$SDIST" | sed -E 's/^pyspark-(.*)\.tar\.gz$/\1/')
NAME=spark-$VER-bin-hadoop3
OUT=$MIRROR/spark/spark-$VER

write_index() {  # index.html: the Spark release and the one Hadoop release served
  local hadoop
  if [ -n "$HADOOP_VERSION" ]; then
    hadoop="<li><a href=\"hadoop/common/hadoop-$HADOOP_VERSION/\">hadoop/common/hadoop-$HADOOP_VERSION/</a>:
hadoop-$HADOOP_VERSION.tar.gz and its .sha512 (Hadoop $HADOOP_VERSION): ${HADOOP_NOTE:-an Apache Hadoop release}.</li>"
  else
    hadoop="<li>No Hadoop in this mirror (images baked from it use <code>--no-hadoop</code>).</li>"
  fi
  cat > "$MIRROR/index.html.part" <<EOS
<!doctype html><title>spark-openstack sandbox mirror</title>
<h1>spark-openstack sandbox mirror</h1>
<p>Laid out like the Apache download site. Hosts of the sandbox cloud have no internet; this
mirror is how software reaches them.</p>
<ul><li><a href="spark/spark-$VER/">spark/spark-$VER/</a>: $NAME.tgz and its .sha512, repackaged
from the PyPI pyspark $VER release, with the sandbox's own start/stop scripts for the
standalone master and workers.</li>
$hadoop</ul>
EOS
  mv "$MIRROR/index.html.part" "$MIRROR/index.html"
}

if [ -s "$OUT/$NAME.tgz" ] && [ -s "$OUT/$NAME.tgz.sha512" ]; then
  write_index
  echo "mirror: $OUT/$NAME.tgz already built"; exit 0
fi
WORK=$(mktemp -d "${MIRROR%/}.build.XXXXXX"); trap 'rm -rf "$WORK"' EXIT
tar -C "$WORK" -xzf "$SDIST" "pyspark-$VER/deps" "pyspark-$VER/lib" "pyspark-$VER/LICENSE" "pyspark-$VER/NOTICE"
SRC=$WORK/pyspark-$VER; S=$WORK/$NAME
mkdir -p "$S/python" "$S/examples/src/main" "$S/conf"
cp -a "$SRC/deps/bin" "$SRC/deps/sbin" "$SRC/deps/jars" "$SRC/deps/data" "$SRC/deps/licenses" "$S/"
cp -a "$SRC/lib" "$S/python/lib"
cp -a "$SRC/deps/examples" "$S/examples/src/main/python"
cp "$SRC/LICENSE" "$SRC/NOTICE" "$S/"
rm -f "$S"/bin/*.cmd
echo "Spark $VER built for Hadoop 3 (repackaged by the spark-openstack sandbox from the PyPI pyspark $VER release)" > "$S/RELEASE"

daemon_script() {  # daemon_script FILE CLASS ARGS-LINE
  cat > "$1" <<EOS
#!/usr/bin/env bash
# spark-openstack sandbox script (not Apache's file): $4
export SPARK_HOME="\${SPARK_HOME:-\$(cd "\$(dirname "\$0")/.."; pwd)}"
. "\$SPARK_HOME/sbin/spark-config.sh"
. "\$SPARK_HOME/bin/load-spark-env.sh"
$3
EOS
}
daemon_script "$S/sbin/start-master.sh" Master \
  'exec "$SPARK_HOME/sbin/spark-daemon.sh" start org.apache.spark.deploy.master.Master 1 \
  --host "${SPARK_MASTER_HOST:-$(hostname -f)}" --port "${SPARK_MASTER_PORT:-7077}" \
  --webui-port "${SPARK_MASTER_WEBUI_PORT:-8080}" "$@"' "start the standalone Master"
daemon_script "$S/sbin/start-worker.sh" Worker \
  '[ $# -ge 1 ] || { echo "Usage: start-worker.sh spark://HOST:PORT [options]" >&2; exit 1; }
M=$1; shift
exec "$SPARK_HOME/sbin/spark-daemon.sh" start org.apache.spark.deploy.worker.Worker 1 \
  --webui-port "${SPARK_WORKER_WEBUI_PORT:-8081}" ${SPARK_WORKER_PORT:+--port $SPARK_WORKER_PORT} "$M" "$@"' \
  "start one standalone Worker"
daemon_script "$S/sbin/stop-master.sh" Master \
  'exec "$SPARK_HOME/sbin/spark-daemon.sh" stop org.apache.spark.deploy.master.Master 1' "stop the Master"
daemon_script "$S/sbin/stop-worker.sh" Worker \
  'exec "$SPARK_HOME/sbin/spark-daemon.sh" stop org.apache.spark.deploy.worker.Worker 1' "stop the Worker"
chmod 755 "$S"/sbin/*.sh "$S"/bin/*
mkdir -p "$OUT"
tar -C "$WORK" -czf "$OUT/$NAME.tgz.part" "$NAME"
mv "$OUT/$NAME.tgz.part" "$OUT/$NAME.tgz"
(cd "$OUT" && sha512sum "$NAME.tgz" > "$NAME.tgz.sha512")
write_index
echo "mirror: built $OUT/$NAME.tgz ($(du -h "$OUT/$NAME.tgz" | cut -f1))"
