"""Bare cloud images end to end on the sandbox, through the CLI as the non-admin user.

``debian-12-bare`` and ``debian-13-bare`` are real minimal Debian trees (debootstrap from
Debian's archive: cloud-init, sshd, sudo, Python, and no Java), which the sandbox's servers
boot on instead of the machine's own root. Their servers have no route out: apt goes through
the sandbox's apt proxy (``create-image --apt-proxy``), as on a private cloud.

Here, Debian 13 (Debian 12's bare image is test_e2e.py's: its bake installs OpenJDK 17 and
its cluster runs HDFS, YARN, Spark, the jobs and the fab flows): ``create-image --jupyter``
installs OpenJDK 21 itself (seen in its output, recorded in the image's properties) and
Jupyter into a venv of Debian 13's own Python 3.13; ``launch -s 2 --jupyter`` runs HDFS +
YARN + Spark on the image's own tree; a PySpark job reads and writes HDFS on YARN; a
notebook's PySpark kernel runs on the cluster; ``destroy`` leaves nothing.
"""
from __future__ import annotations

import os
import re
import uuid

import pytest

from support.e2e import (ALLOWED, FLAVOR, MIRROR, REAL_CLOUD, ROOT, YARN_FLAVOR,
                         apt_proxy_args, as_hduser, cli, fixed_ip, hadoop_version, leftovers,
                         notebook_json, notebook_outputs, ok, said, ssh)

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

FLOATING_ALLOWED = os.environ.get("SPARK_OPENSTACK_E2E_FLOATING_CIDR", "10.214.0.1/32")
JUPYTER = "/opt/spark-openstack/python/bin/jupyter"

JOB = '''
import platform
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("bare-image").getOrCreate()
sc = spark.sparkContext
sc.parallelize(["a b a"] * 10, 4).saveAsTextFile("hdfs:///tmp/bare-in")
n = sc.textFile("hdfs:///tmp/bare-in").flatMap(str.split).filter(lambda w: w == "a").count()
java = sc._jvm.java.lang.System.getProperty("java.version")
py = sc.parallelize(range(4), 4).map(lambda _: platform.python_version()).distinct().collect()
print(f"COUNT={n} MASTER={sc.master} JAVA={java} DRIVER_PY={platform.python_version()} "
      f"EXECUTOR_PY={','.join(py)}")
spark.stop()
'''


# base image, its release, the OpenJDK the bake must choose, its Python, --jupyter
CASES = [(os.environ.get("SPARK_OPENSTACK_E2E_DEBIAN13_IMAGE", "debian-13-bare"), "13",
          "openjdk-21-jre-headless", "3.13", True)]


@pytest.mark.parametrize("base, version, java_package, python, jupyter", CASES,
                         ids=[c[0] for c in CASES])
def test_a_bare_image_bakes_its_java_and_runs_hdfs_yarn_spark(
        e2e_env, cloud, keypair, tmp_path, base, version, java_package, python, jupyter):
    kp_name, key = keypair
    suffix = uuid.uuid4().hex[:6]
    image, cluster = f"bare{version}-{suffix}", f"b{version}{suffix}"
    proxy = apt_proxy_args()
    pip = ("--jupyter", "--python-constraints",
           str(ROOT / ".sandbox" / "mirror" / "pypi" / "constraints.txt"),
           "--pip-find-links", f"{MIRROR}/pypi/") if jupyter and not REAL_CLOUD else (
        ("--jupyter",) if jupyter else ())
    base_props = cloud.image.find_image(base).properties or {}
    assert base_props.get("sandbox_rootfs") == base or REAL_CLOUD, base_props
    destroyed = False
    try:
        # 1. the bake installs Java itself (the base has none), through the apt proxy
        baked = cli(e2e_env, "create-image", "-n", image, "--base-image", base,
                    "--flavor", FLAVOR, "-k", kp_name, "--identity-file", key,
                    "--mirror", MIRROR, "--allowed-cidr", ALLOWED,
                    "--hadoop-version", hadoop_version(), *proxy, *pip, timeout=1800)
        out = baked.stdout + baked.stderr
        assert f"(installed {java_package}, chosen for debian {version})" in out, said(baked)
        props = cloud.image.find_image(image).properties or {}
        assert props.get("java_package") == java_package, props
        assert props.get("os_release") == f"debian {version}", props
        assert props.get("apt_proxy") == (proxy[1] if proxy else "none"), props
        assert props.get("hadoop_services") == "hdfs,yarn", props
        java_major = java_package.split("-")[1]
        assert props.get("java_version", "").startswith(java_major + "."), props

        # 2. a cluster on it: HDFS + YARN + Spark (+ Jupyter)
        launched = cli(e2e_env, "launch", "-c", cluster, "-s", "2", "-k", kp_name,
                       "-i", image, "--identity-file", key, "--flavor", YARN_FLAVOR,
                       "--allowed-cidr", ALLOWED, "--allowed-cidr", FLOATING_ALLOWED,
                       *(("--jupyter",) if jupyter else ()), timeout=1500)
        out = launched.stdout + launched.stderr
        workers = f"({cluster}-worker-1, {cluster}-worker-2)"
        assert f"hdfs: 2/2 DataNodes live {workers} [ok]" in out, said(launched)
        assert f"yarn: 2/2 NodeManagers running {workers} [ok]" in out, said(launched)
        assert f"spark: 2/2 workers ALIVE {workers} [ok]" in out, said(launched)
        master = next(s for s in cloud.compute.servers() if s.name == f"{cluster}-master")
        host = fixed_ip(cloud.compute.get_server(master.id))

        # the nodes run the image's own tree: its release, the bake's Java, not the machine's
        seen = ok(ssh(host, key, ". /etc/os-release; echo VERSION_ID=$VERSION_ID; "
                      "dpkg -S \"$(readlink -f \"$(command -v java)\")\"; "
                      "[ -e /usr/bin/chromium ] && echo MACHINE-TREE || echo OWN-TREE"),
                  "the master's tree")
        assert f"VERSION_ID={version}" in seen and f"{java_package}:" in seen, seen
        assert "OWN-TREE" in seen, seen      # the machine's chromium is not in a bare image

        # 3. a job on YARN reading and writing HDFS, on the bake's Java and the image's Python
        job = tmp_path / "bare_job.py"
        job.write_text(JOB)
        submitted = cli(e2e_env, "submit", "-c", cluster, "--identity-file", key, str(job),
                        timeout=900)
        job_id = re.search(r"job (\S+) finished \(exit 0\)",
                           submitted.stdout + submitted.stderr)
        assert job_id, said(submitted)
        logs = cli(e2e_env, "logs", "-c", cluster, "--identity-file", key, job_id[1],
                   timeout=300)
        line = re.search(r"COUNT=(\d+) MASTER=(\S+) JAVA=(\S+) DRIVER_PY=(\S+) "
                         r"EXECUTOR_PY=(\S+)", logs.stdout + logs.stderr)
        assert line, said(logs)
        assert line[1] == "20" and line[2] == "yarn", line[0]
        assert line[3].startswith(java_major + "."), line[0]
        assert line[4].startswith(python + ".") and line[5].startswith(python + "."), line[0]

        # 4. a notebook's PySpark kernel on the image's own Python (Debian 13's 3.13)
        if jupyter:
            cells = ["import platform\nprint('NB', sc.master, platform.python_version(), "
                     "sc.parallelize(range(100), 4).sum())"]
            ssh(host, key, as_hduser("mkdir -p ~/notebooks && cat > ~/notebooks/bare.ipynb"),
                stdin=notebook_json(cells).encode())
            ok(ssh(host, key, as_hduser(
                f"cd ~/notebooks && timeout 600 {JUPYTER} nbconvert --to notebook --execute "
                "--ExecutePreprocessor.kernel_name=pyspark --ExecutePreprocessor.timeout=500 "
                "--output bare.out.ipynb bare.ipynb > bare.log 2>&1 "
                "|| { tail -n 40 bare.log >&2; exit 1; }"), timeout=700), "nbconvert")
            nb = notebook_outputs(ok(ssh(host, key, as_hduser("cat ~/notebooks/bare.out.ipynb")),
                                     "the executed notebook"))
            assert re.search(rf"NB yarn {re.escape(python)}\.\d+ 4950", nb), nb

        # 5. destroy leaves nothing (checked before any cleanup below)
        cli(e2e_env, "destroy", "-c", cluster, "--yes", timeout=600)
        destroyed = True
        assert not any(leftovers(cloud, cluster).values()), leftovers(cloud, cluster)
    finally:
        if not destroyed:
            cli(e2e_env, "destroy", "-c", cluster, "--yes", check=False, timeout=600)
        found = cloud.image.find_image(image)
        if found is not None:
            cloud.image.delete_image(found.id, ignore_missing=True)
