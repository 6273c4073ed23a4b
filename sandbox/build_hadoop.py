#!/usr/bin/env python3
"""Build the sandbox mirror's Hadoop from Apache's own jars on Maven Central.

MIRROR/hadoop/common/hadoop-V/hadoop-V.tar.gz (+ .sha512, sha512sum format), laid out as
Apache's binary release is: share/hadoop/{common,hdfs,yarn,mapreduce}/ with their lib/,
share/hadoop/tools/lib (distcp), etc/hadoop defaults, bin/ and libexec/.

- Every jar is Apache's (org.apache.hadoop:*) or a library Apache's poms pull in, resolved by
  Maven (Debian's `maven`) with strict checksums, then checked again here against the SHA-1
  Maven Central publishes beside each file: a mismatch stops the build naming the file.
- The web apps (NameNode, DataNode, ResourceManager, NodeManager UIs) live inside the jars
  (webapps/ in hadoop-hdfs and hadoop-yarn-*), found on the classpath as Apache's are.
- bin/{hadoop,hdfs,yarn,mapred} and libexec/ are the project's own launchers (sandbox/hadoop/):
  Apache's shell scripts are on no registry these machines reach.

Usage: build_hadoop.py MIRROR_DIR [--version V] [--maven-repo DIR]
Idempotent: skips when the tarball exists and was built from these very inputs (a hash of
this script and sandbox/hadoop/ is kept in .build-hash beside it).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAUNCHERS = HERE / "hadoop"
#: The newest Hadoop whose whole server set, with hadoop-mapreduce-examples, resolves on the
#: registry these machines reach (3.5.0 and 3.4.3 lack hadoop-mapreduce-examples there).
DEFAULT_VERSION = "3.4.2"

#: (artifactId, layer) of the server set; every transitive dependency goes to the lib/ of
#: the first artifact here that pulls it in (Maven's tree, nearest wins).
ARTIFACTS = (
    ("hadoop-common", "common"),
    ("hadoop-hdfs", "hdfs"),
    ("hadoop-hdfs-client", "hdfs"),
    ("hadoop-yarn-server-resourcemanager", "yarn"),
    ("hadoop-yarn-server-nodemanager", "yarn"),
    ("hadoop-yarn-server-web-proxy", "yarn"),
    ("hadoop-yarn-client", "yarn"),
    ("hadoop-mapreduce-client-app", "mapreduce"),
    ("hadoop-mapreduce-client-jobclient", "mapreduce"),
    ("hadoop-mapreduce-client-shuffle", "mapreduce"),
    ("hadoop-mapreduce-client-hs", "mapreduce"),
    ("hadoop-mapreduce-examples", "mapreduce"),
    ("hadoop-distcp", "tools"),
)
#: (artifactId, classifier, where) taken alone, without their dependencies: the timeline
#: service's jar, which the ResourceManager's web app loads classes of (Apache's release has
#: it in share/hadoop/yarn/timelineservice/, on the ResourceManager's classpath only), and
#: hadoop-hdfs's tests jar, which carries the HDFS web apps (NameNode, DataNode and
#: SecondaryNameNode UIs) that Apache's release unpacks into share/hadoop/hdfs/webapps/: only
#: its webapps/ folder is taken, none of its classes.
ALONE = (
    ("hadoop-yarn-server-timelineservice", "", "yarn/timelineservice"),
    ("hadoop-hdfs", "tests", "hdfs/webapps"),
)


def die(msg: str) -> None:
    print(f"build_hadoop: {msg}", file=sys.stderr)
    sys.exit(1)


def pom(version: str) -> str:
    deps = "".join(
        f"<dependency><groupId>org.apache.hadoop</groupId><artifactId>{a}</artifactId>"
        f"<version>{version}</version></dependency>\n    " for a, _ in ARTIFACTS)
    deps += "".join(
        f"<dependency><groupId>org.apache.hadoop</groupId><artifactId>{a}</artifactId>"
        f"<version>{version}</version>{f'<classifier>{c}</classifier>' if c else ''}"
        "<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion>"
        "</exclusions></dependency>\n    " for a, c, _ in ALONE)
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>spark-openstack.sandbox</groupId><artifactId>hadoop-release</artifactId>
  <version>{version}</version><packaging>pom</packaging>
  <dependencies>
    {deps}</dependencies>
</project>
"""


def parse_coords(text: str) -> tuple[str, str, str, str]:
    """``g:a:type[:classifier]:version:scope[:path]`` -> (g, a, classifier, version)."""
    parts = text.strip().split(":")
    if len(parts) >= 6 and parts[4] not in ("compile", "runtime", "provided", "system", "test"):
        return parts[0], parts[1], parts[3], parts[4]
    return parts[0], parts[1], "", parts[3]


def parse_list(text: str) -> dict[tuple[str, str, str], Path]:
    """``dependency:list -DoutputAbsoluteArtifactFilename`` -> {(g, a, classifier): jar}."""
    files = {}
    for line in text.splitlines():
        line = line.strip()
        if line.count(":") < 5 or not line.endswith(".jar"):
            continue
        head, _, path = line.rpartition(":")
        g, a, c, _v = parse_coords(head)
        scope = head.rsplit(":", 1)[1]
        if scope in ("compile", "runtime"):
            files[(g, a, c)] = Path(path)
    return files


def parse_tree(text: str) -> dict[tuple[str, str, str], str]:
    """``dependency:tree`` text -> {(g, a, classifier): the top-level artifactId above it}."""
    owner: dict[tuple[str, str, str], str] = {}
    top = None
    for line in text.splitlines()[1:]:
        i = next((k for k, ch in enumerate(line) if ch.isalnum()), None)
        if i is None:
            continue
        g, a, c, _v = parse_coords(line[i:].split(" ")[0])
        if i == 3:
            top = a
        owner[(g, a, c)] = top or a
    return owner


def expected_sha1(jar: Path) -> str:
    side = jar.with_name(jar.name + ".sha1")
    if not side.is_file():
        die(f"{jar}: no {side.name} from Maven Central beside it; cannot check the jar")
    words = side.read_text().split()
    if not words or len(words[0]) != 40:
        die(f"{side}: not a SHA-1 checksum file")
    return words[0].lower()


def verify(jar: Path) -> None:
    """The jar's SHA-1 is the one Maven Central publishes beside it, or the build stops."""
    want = expected_sha1(jar)
    got = hashlib.sha1(jar.read_bytes()).hexdigest()
    if got != want:
        die(f"{jar}: SHA-1 {got} but Maven Central publishes {want}: checksum mismatch, "
            "delete the file and run again")


def layer_of(group: str, artifact: str, owner: str) -> tuple[str, bool]:
    """(layer, is Apache Hadoop's own jar): Hadoop's jars in share/hadoop/LAYER/, libraries
    in share/hadoop/LAYER/lib/ of the top-level artifact that pulls them in."""
    own = group == "org.apache.hadoop"
    if own:
        for prefix, layer in (("hadoop-yarn", "yarn"), ("hadoop-mapreduce", "mapreduce"),
                              ("hadoop-hdfs", "hdfs"), ("hadoop-distcp", "tools")):
            if artifact.startswith(prefix):
                return layer, True
        return "common", True
    return dict(ARTIFACTS).get(owner, "common"), False


def unpack_webapps(jar: Path, dest: Path) -> None:
    """The jar's webapps/ folder (and nothing else of it) into ``dest``."""
    with zipfile.ZipFile(jar) as z:
        names = [n for n in z.namelist() if n.startswith("webapps/") and not n.endswith("/")]
        if not names:
            die(f"{jar}: no webapps/ in it")
        for n in names:
            target = dest / n[len("webapps/"):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(n))


def inputs_hash(version: str) -> str:
    h = hashlib.sha256(version.encode())
    for p in [Path(__file__).resolve(), *sorted(q for q in LAUNCHERS.rglob("*") if q.is_file())]:
        h.update(str(p.relative_to(HERE)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def mvn(args: list[str], cwd: Path, repo: Path, log: Path) -> None:
    cmd = ["mvn", "-B", "-q", "-C", f"-Dmaven.repo.local={repo}", *args]
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        rc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            timeout=1800).returncode
    if rc:
        tail = log.read_text().splitlines()[-15:]
        die("Maven could not resolve Hadoop's jars:\n  " + "\n  ".join(tail))


def build(mirror: Path, version: str, repo: Path) -> None:
    name = f"hadoop-{version}"
    out = mirror / "hadoop" / "common" / name
    tarball = out / f"{name}.tar.gz"
    stamp = inputs_hash(version)
    if (tarball.is_file() and (out / f"{name}.tar.gz.sha512").is_file()
            and (out / ".build-hash").is_file()
            and (out / ".build-hash").read_text().strip() == stamp):
        print(f"mirror: {tarball} already built")
        return
    if shutil.which("mvn") is None:
        die("mvn is missing (apt-get install maven)")
    mirror.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".hadoop-build.", dir=mirror) as tmp:
        work = Path(tmp)
        (work / "pom.xml").write_text(pom(version))
        log = mirror.parent / "maven.log" if mirror.parent.is_dir() else work / "maven.log"
        t0 = time.monotonic()
        mvn(["dependency:tree", "-DoutputFile=tree.txt"], work, repo, log)
        mvn(["dependency:list", "-DoutputAbsoluteArtifactFilename=true",
             "-DoutputFile=list.txt"], work, repo, log)
        resolved = time.monotonic() - t0
        files = parse_list((work / "list.txt").read_text())
        owners = parse_tree((work / "tree.txt").read_text())
        if not files:
            die(f"Maven resolved no jars (see {log})")
        home = work / name
        counts = {"own": 0, "lib": 0}
        alone = {(a, c): where for a, c, where in ALONE}
        for (g, a, c), jar in sorted(files.items()):
            if not jar.is_file():
                die(f"{jar}: resolved by Maven but missing")
            verify(jar)
            where = alone.get((a, c)) if g == "org.apache.hadoop" else None
            if where and where.endswith("/webapps"):
                unpack_webapps(jar, home / "share" / "hadoop" / where)
                continue
            if where:
                (home / "share" / "hadoop" / where).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(jar, home / "share" / "hadoop" / where / jar.name)
                counts["own"] += 1
                continue
            layer, own = layer_of(g, a, owners.get((g, a, c), ""))
            dest = home / "share" / "hadoop" / layer / ("" if own and layer != "tools" else "lib")
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(jar, dest / jar.name)
            counts["own" if own else "lib"] += 1
        shutil.copytree(LAUNCHERS, home, dirs_exist_ok=True)
        for d in ("bin", "libexec"):
            for f in (home / d).iterdir():
                f.chmod(0o755 if d == "bin" else 0o644)
        common_jar = home / "share/hadoop/common" / f"hadoop-common-{version}.jar"
        with zipfile.ZipFile(common_jar) as z:
            for n in ("LICENSE.txt", "NOTICE.txt"):
                if f"META-INF/{n}" in z.namelist():
                    (home / n).write_bytes(z.read(f"META-INF/{n}"))
        (home / "RELEASE").write_text(release_note(version, counts))
        out.mkdir(parents=True, exist_ok=True)
        part = out / f"{name}.tar.gz.part"
        with tarfile.open(part, "w:gz", compresslevel=6) as tar:
            def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                return info
            tar.add(home, arcname=name, filter=owned_by_root)
        part.replace(tarball)
        digest = hashlib.sha512(tarball.read_bytes()).hexdigest()
        (out / f"{name}.tar.gz.sha512").write_text(f"{digest}  {name}.tar.gz\n")
        (out / ".build-hash").write_text(stamp + "\n")
    size = tarball.stat().st_size / 2**20
    print(f"mirror: built {tarball} ({size:.0f} MiB; {counts['own']} Apache Hadoop jars, "
          f"{counts['lib']} library jars, every one SHA-1-checked; Maven resolve {resolved:.0f} s)")


def release_note(version: str, counts: dict[str, int]) -> str:
    return f"""Apache Hadoop {version} (HDFS, YARN, MapReduce), assembled by the spark-openstack sandbox
(sandbox/build_hadoop.py) from Apache's own jars on Maven Central.

- share/hadoop/*/hadoop-*.jar ({counts['own']} files): Apache Hadoop {version}'s jars, org.apache.hadoop:*.
- share/hadoop/*/lib/*.jar ({counts['lib']} files): the libraries Apache's poms name, as Maven resolves them.
- Every jar was checked against the SHA-1 Maven Central publishes beside it. Nothing was compiled.
- bin/hadoop, bin/hdfs, bin/yarn, bin/mapred and libexec/ are the spark-openstack project's own
  launchers (not Apache's scripts, which are on no registry), with Apache 3.x's command forms.
- etc/hadoop holds defaults in Apache's file names; a cluster's own configuration replaces them.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mirror", type=Path)
    ap.add_argument("--version", default=os.environ.get("SANDBOX_HADOOP_VERSION", DEFAULT_VERSION))
    ap.add_argument("--maven-repo", type=Path, default=Path.home() / ".m2" / "repository")
    a = ap.parse_args()
    build(a.mirror.resolve(), a.version, a.maven_repo.resolve())


if __name__ == "__main__":
    main()
