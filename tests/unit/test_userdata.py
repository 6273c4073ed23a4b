"""The builder's user-data: valid #cloud-config, a shell script that parses, and a
downloader that refuses any tarball whose SHA-512 does not match (run for real against a
local HTTP server)."""
from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import sys
import threading

import pytest
import yaml

from spark_openstack import paths
from spark_openstack.errors import ValidationError
from spark_openstack.userdata import (render_bake_userdata, render_java_choice,
                                      spark_tarball_url, hadoop_tarball_url)

FETCH = paths.cloud_init_dir() / "fetch_verified.py"


def _files(userdata: str) -> dict[str, str]:
    doc = yaml.safe_load(userdata)
    return {f["path"]: f["content"] for f in doc["write_files"]}


@pytest.mark.parametrize("hadoop_version", [None, "3.4.1"])
def test_bake_userdata_is_cloud_config_with_a_valid_script(tmp_path, hadoop_version):
    text = render_bake_userdata(spark_version="4.3.0", hadoop_version=hadoop_version,
                                mirror="http://10.213.0.1:8099/", python_packages=["numpy"])
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert any(isinstance(u, dict) and u["name"] == "hduser" for u in doc["users"])
    assert "default" in doc["users"]
    assert doc["runcmd"] == [["/usr/local/lib/spark-openstack/bake.sh"]]
    files = _files(text)
    script = files["/usr/local/lib/spark-openstack/bake.sh"]
    assert files["/usr/local/lib/spark-openstack/fetch_verified.py"] == FETCH.read_text()
    (tmp_path / "bake.sh").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "bake.sh")], check=True)
    assert "set -Eeuo pipefail" in script
    assert "command -v java" in script          # Java only when missing
    # the script downloads exactly the URLs of Apache's layout, built once in Python
    assert ("SPARK_URL=http://10.213.0.1:8099/spark/spark-4.3.0/spark-4.3.0-bin-hadoop3.tgz\n"
            in script)
    assert 'install_release "$SPARK_URL"' in script and "$MIRROR" not in script
    assert ("HADOOP_URL=http://10.213.0.1:8099/hadoop/common/hadoop-3.4.1/hadoop-3.4.1.tar.gz\n"
            in script) == bool(hadoop_version)
    assert ("HADOOP_VERSION=3.4.1" in script) == bool(hadoop_version)
    assert "/opt/spark" in script and "/etc/spark-openstack/image.json" in script
    # into the image's venv (never the system Python: no --break-system-packages)
    assert '"$PYTHON_ENV/bin/pip" install "${PIP_ARGS[@]}" numpy' in script
    assert "--break-system-packages" not in script
    # nothing secret goes into the image
    for word in ("spark.authenticate.secret", "\n    passwd:", "hashed_passwd", "password:", "PRIVATE KEY",
                 "OS_PASSWORD", "ssh_authorized_keys", "clouds.yaml"):
        assert word not in text


def test_urls_follow_apaches_layout():
    assert spark_tarball_url(mirror="https://archive.apache.org/dist/", spark_version="4.0.1") \
        == "https://archive.apache.org/dist/spark/spark-4.0.1/spark-4.0.1-bin-hadoop3.tgz"
    assert hadoop_tarball_url(mirror="http://m", hadoop_version="3.4.1") \
        == "http://m/hadoop/common/hadoop-3.4.1/hadoop-3.4.1.tar.gz"


@pytest.mark.parametrize("kwargs, option", [
    (dict(spark_version="4.3; rm -rf /"), "--spark-version"),
    (dict(hadoop_version="latest"), "--hadoop-version"),
    (dict(mirror="ftp://mirror"), "--mirror"),
    (dict(java_package="openjdk 17"), "--java-package"),
    (dict(python_packages=["numpy; curl evil"]), "--python-packages"),
])
def test_bad_inputs_are_refused_by_name(kwargs, option):
    args = dict(spark_version="4.3.0", hadoop_version=None, mirror="http://m")
    args.update(kwargs)
    with pytest.raises(ValidationError, match=option):
        render_bake_userdata(**args)


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _fetch(url, out):
    return subprocess.run([sys.executable, str(FETCH), url, str(out)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("style", ["sha512sum", "bsd-tag", "gpg-print-md"])
def test_fetch_accepts_each_published_checksum_format(mirror, tmp_path, style):
    root, url = mirror
    payload = b"spark tarball bytes" * 1000
    digest = hashlib.sha512(payload).hexdigest()
    (root / "spark.tgz").write_bytes(payload)
    if style == "sha512sum":
        checksum = f"{digest}  spark.tgz\n"
    elif style == "bsd-tag":
        checksum = f"SHA512 (spark.tgz) = {digest}\n"
    else:
        groups = [digest[i:i + 8].upper() for i in range(0, 128, 8)]
        checksum = "spark.tgz: " + " ".join(groups[:8]) + "\n           " \
            + " ".join(groups[8:]) + "\n"
    (root / "spark.tgz.sha512").write_text(checksum)
    result = _fetch(f"{url}/spark.tgz", tmp_path / "out.tgz")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.tgz").read_bytes() == payload


def test_fetch_refuses_a_mismatch_and_leaves_nothing(mirror, tmp_path):
    root, url = mirror
    (root / "spark.tgz").write_bytes(b"tampered")
    (root / "spark.tgz.sha512").write_text(hashlib.sha512(b"original").hexdigest()
                                           + "  spark.tgz\n")
    result = _fetch(f"{url}/spark.tgz", tmp_path / "out.tgz")
    assert result.returncode != 0
    assert "MISMATCH" in result.stderr
    assert not (tmp_path / "out.tgz").exists()


def test_fetch_fails_clearly_without_a_checksum(mirror, tmp_path):
    root, url = mirror
    (root / "spark.tgz").write_bytes(b"x")
    result = _fetch(f"{url}/spark.tgz", tmp_path / "out.tgz")
    assert result.returncode != 0 and "cannot download" in result.stderr
    assert not (tmp_path / "out.tgz").exists()


def test_image_scrub_empties_the_machine_id_and_keeps_host_keys():
    from spark_openstack.image import SCRUB_COMMAND
    assert "truncate -s 0 /etc/machine-id" in SCRUB_COMMAND       # emptied, not removed
    assert "[ ! -L /var/lib/dbus/machine-id ]" in SCRUB_COMMAND   # its symlink stays
    assert "/var/tmp/spark-openstack-bake." in SCRUB_COMMAND
    assert "authorized_keys" in SCRUB_COMMAND and "cloud-init clean --logs" in SCRUB_COMMAND
    assert "ssh_host" not in SCRUB_COMMAND
    subprocess.run(["sh", "-n", "-c", SCRUB_COMMAND], check=True)


# --------------------------------------------------------------------------- Java per release

def _choose(tmp_path, os_release: str, requested: str = "auto", apt_knows=()):
    """Run the bake's own choose_java_package (the template the bake includes) in bash,
    with a fake os-release and an apt-cache that knows only ``apt_knows``."""
    (tmp_path / "os-release").write_text(os_release)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "apt-cache"
    fake.write_text("#!/bin/bash\n# apt-cache show --no-all-versions PKG\n"
                    f"for p in {' '.join(apt_knows) or '__none__'}; do\n"
                    '  [ "$3" = "$p" ] && { echo "Package: $p"; echo "Version: 1"; exit 0; }\n'
                    "done\necho \"E: No packages found\" >&2; exit 100\n")
    fake.chmod(0o755)
    script = (render_java_choice()
              + "\napt_update() { echo apt-update-called >&2; }\n"
              + f'choose_java_package {requested} && echo "$CHOSEN_JAVA|$CHOSEN_WHY"\n')
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin",
                               "OS_RELEASE_FILE": str(tmp_path / "os-release")})


DEBIAN_12 = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
DEBIAN_13 = 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\n'


@pytest.mark.parametrize("os_release, package", [
    (DEBIAN_12, "openjdk-17-jre-headless"),          # bookworm has 17 only
    (DEBIAN_13, "openjdk-21-jre-headless"),          # trixie has no 17
    ('ID=ubuntu\nVERSION_ID="24.04"\n', "openjdk-17-jre-headless"),
])
def test_java_is_chosen_for_the_release_without_asking_apt(tmp_path, os_release, package):
    out = _choose(tmp_path, os_release)          # apt-cache knows nothing: the table decides
    assert out.returncode == 0, out.stderr
    release = "debian 12" if "bookworm" in os_release else (
        "debian 13" if "trixie" in os_release else "ubuntu 24.04")
    assert out.stdout.strip() == f"{package}|chosen for {release}"
    assert "apt-update-called" not in out.stderr


def test_an_unlisted_release_gets_the_first_openjdk_its_apt_has(tmp_path):
    out = _choose(tmp_path, "ID=debian\n",          # testing/sid: no VERSION_ID
                  apt_knows=("openjdk-21-jre-headless", "openjdk-25-jre-headless"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("openjdk-21-jre-headless|chosen for debian unknown")
    assert "apt-update-called" in out.stderr      # the index is refreshed before asking


def test_no_known_openjdk_fails_in_one_line_naming_the_option(tmp_path):
    out = _choose(tmp_path, 'ID=linuxmint\nVERSION_ID="22"\n')
    assert out.returncode != 0 and out.stdout == ""
    assert "no OpenJDK package for linuxmint 22" in out.stderr
    assert "--java-package NAME" in out.stderr


def test_a_named_java_package_is_taken_as_is(tmp_path):
    out = _choose(tmp_path, DEBIAN_13, requested="openjdk-25-jre-headless")
    assert out.stdout.strip() == "openjdk-25-jre-headless|--java-package"


def test_the_bake_installs_through_one_apt_function_and_the_proxy(tmp_path):
    text = render_bake_userdata(spark_version="4.3.0", hadoop_version=None, mirror="http://m",
                                apt_proxy="http://10.0.0.5:3142", jupyter=True)
    script = _files(text)["/usr/local/lib/spark-openstack/bake.sh"]
    (tmp_path / "bake.sh").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "bake.sh")], check=True)
    assert render_java_choice() in script          # the function the tests above ran
    assert "APT_PROXY=http://10.0.0.5:3142\n" in script
    assert "/etc/apt/apt.conf.d/80spark-openstack-proxy" in script
    # every package goes through apt_install (update once, no recommends), none around it
    assert script.count("apt-get install ") == 1 and script.count("apt-get update -q") == 1
    assert 'apt_install "$JAVA_INSTALLED"' in script and "apt_install python3-venv" in script
    plain = render_bake_userdata(spark_version="4.3.0", hadoop_version=None, mirror="http://m")
    assert "APT_PROXY=''\n" in _files(plain)["/usr/local/lib/spark-openstack/bake.sh"]
