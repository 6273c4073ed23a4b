"""Jobs (submit/jobs/logs/kill) and the one-shot run, without a cloud.

The master is simulated by ``LocalMaster``: its commands run in a local bash and the jobs
root is a temp folder, so the runner script, the detached start, the master-side reader
(list/poll/kill) and the output download all run for real here; spark-submit is a
stand-in that prints its argv as JSON (and can sleep or fail).
"""
from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import tarfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from spark_openstack import errors, jobs, oneshot
from spark_openstack.model import ClusterFacts, Node
from spark_openstack.services.base import CommandResult

SUBMIT_STANDIN = textwrap.dedent("""\
    #!/usr/bin/env python3
    # spark-submit stand-in: prints its argv and environment, then sleeps/fails on request
    import json, os, sys, time
    print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                      "out": os.environ.get("SPARK_OPENSTACK_OUTPUT_DIR"),
                      "job": os.environ.get("SPARK_OPENSTACK_JOB_ID")}), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    out = os.environ["SPARK_OPENSTACK_OUTPUT_DIR"]
    with open(os.path.join(out, "part-0.txt"), "w") as f:
        f.write("result\\n")
    for i in range(int(os.environ.get("STANDIN_SLEEP", "0"))):
        print("tick", i, flush=True)
        time.sleep(1)
    sys.exit(int(os.environ.get("STANDIN_EXIT", "0")))
""")


def _facts(services=("hdfs", "spark"), spark_home="/opt/spark") -> ClusterFacts:
    master = Node(name="demo-master", role="master", private_ip="10.0.0.10", status="ACTIVE")
    worker = Node(name="demo-worker-1", role="worker", private_ip="10.0.0.21",
                  status="ACTIVE")
    return ClusterFacts(cluster_name="demo", master=master, workers=(worker,),
                        services=tuple(services), spark_home=spark_home)


class LocalMaster:
    """A runner whose "master" is this machine: commands in bash, files under tmp."""

    def __init__(self):
        self.commands: list[str] = []

    def run(self, node, command, *, timeout=None, check=True):
        self.commands.append(command)
        proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        return CommandResult(proc.stdout, proc.stderr, proc.returncode)

    def put_files(self, node, files, *, owner="hduser", setup="", timeout=300):
        assert "install -d -m 0700 -o hduser" in setup
        for path, (content, mode) in files.items():
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
            target.chmod(mode)
        root = Path(jobs.JOBS_ROOT)
        for job in root.iterdir():
            for sub in ("app", "deps", "output"):
                (job / sub).mkdir(exist_ok=True)

    def close(self):
        pass


@pytest.fixture
def master(tmp_path, monkeypatch):
    root = tmp_path / "jobs root"            # a space: every path must be quoted
    root.mkdir()
    monkeypatch.setattr(jobs, "JOBS_ROOT", str(root))
    home = tmp_path / "spark home"
    (home / "bin").mkdir(parents=True)
    standin = home / "bin" / "spark-submit"
    standin.write_text(SUBMIT_STANDIN)
    standin.chmod(0o755)
    runner = LocalMaster()
    yield runner, _facts(spark_home=str(home))
    for job in root.iterdir():                # never leave a stand-in running
        pgid = job / "pgid"
        if pgid.exists() and not (job / "exit_code").exists():
            try:
                os.killpg(int(pgid.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


@pytest.fixture
def app_files(tmp_path):
    folder = tmp_path / "my app"
    folder.mkdir()
    app = folder / "it's main.py"
    app.write_text("print('hi')\n")
    lib = folder / "lib.py"
    lib.write_text("X = 1\n")
    data = folder / "lookup.csv"
    data.write_text("a,b\n")
    return app, lib, data


def _wait_ended(runner, facts, job_id, timeout=20) -> jobs.Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_job(runner=runner, facts=facts, job_id=job_id)
        if job.state != jobs.RUNNING:
            return job
        time.sleep(0.2)
    pytest.fail(f"job {job_id} still running after {timeout}s")


# ----------------------------------------------------------------------------- ids

def test_job_ids_sort_by_time_and_are_checked():
    a = jobs.new_job_id(now=datetime(2026, 11, 24, 23, 15, 1, tzinfo=timezone.utc))
    b = jobs.new_job_id(now=datetime(2026, 11, 24, 23, 15, 2, tzinfo=timezone.utc))
    assert a.startswith("20261124-231501-") and len(a) == len("20261124-231501-ab12")
    assert sorted([b, a]) == [a, b]
    assert jobs.check_job_id(a) == a
    for bad in ("", "../../etc", "20261124-231501-ab12/..", "20261124-231501-AB12",
                "20261124-231501-ab12 ", "x"):
        with pytest.raises(errors.UsageError):
            jobs.check_job_id(bad)


# ----------------------------------------------------------------------------- prepare

def test_prepare_plans_uploads_and_checks_conf(app_files):
    app, lib, data = app_files
    sub = jobs.prepare(app=str(app), args=("--day", "x y"), conf=("spark.a=1", "spark.a=2"),
                       py_files=(f"{lib},hdfs:///libs/remote.zip",), files=(str(data),),
                       jars=("local:/opt/x.jar",))
    assert sub.conf == (("spark.a", "2"),)
    assert sub.py_files == (str(lib), "hdfs:///libs/remote.zip")
    assert sub.uploads == {"app/it's main.py": app, "deps/lib.py": lib,
                           "deps/lookup.csv": data}


@pytest.mark.parametrize("kwargs, says", [
    ({"conf": ("executor.cores=2",)}, "spark."),
    ({"conf": ("spark.authenticate.secret=x",)}, "not changeable"),
    ({"conf": ("spark.x",)}, "--conf"),
    ({"py_files": ("/no/such/file.py",)}, "no such file"),
    ({"master": "mesos"}, "--master-url"),
])
def test_prepare_refuses_bad_input(app_files, kwargs, says):
    with pytest.raises(errors.UsageError, match=".*") as info:
        jobs.prepare(app=str(app_files[0]), **kwargs)
    assert says in str(info.value)


def test_prepare_refuses_colliding_names(app_files, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "lib.py").write_text("")
    with pytest.raises(errors.UsageError, match="also called 'lib.py'"):
        jobs.prepare(app=str(app_files[0]), py_files=(str(app_files[1]),),
                     files=(str(other / "lib.py"),))


def test_missing_app_is_refused(tmp_path):
    with pytest.raises(errors.UsageError, match="APP .*no such file"):
        jobs.prepare(app=str(tmp_path / "nope.py"))


# ----------------------------------------------------------------------------- master url

def test_master_url_follows_the_services():
    facts = _facts(services=("hdfs", "spark"))
    assert jobs.master_url(facts=facts, wanted=None) == ("spark://10.0.0.10:7077",
                                                         "standalone")
    with pytest.raises(errors.ValidationError, match="does not run YARN"):
        jobs.master_url(facts=facts, wanted="yarn")
    yarn = _facts(services=("hdfs", "yarn", "spark"))
    assert jobs.master_url(facts=yarn, wanted=None) == ("yarn", "yarn")
    assert jobs.master_url(facts=yarn, wanted="standalone")[1] == "standalone"
    with pytest.raises(errors.ValidationError, match="Spark standalone"):
        jobs.master_url(facts=_facts(services=("hdfs", "yarn")), wanted="standalone")


def test_submit_argv_rewrites_local_paths(app_files):
    app, lib, data = app_files
    sub = jobs.prepare(app=str(app), args=("in put", "--flag"), conf=("spark.x=a b",),
                       py_files=(str(lib), "hdfs:///r.zip"), files=(str(data),))
    argv = jobs.submit_argv(sub=sub, facts=_facts(), jobdir="/j/ID", master="yarn")
    assert argv == ["/opt/spark/bin/spark-submit", "--master", "yarn", "--deploy-mode",
                    "client", "--conf", "spark.x=a b", "--py-files",
                    "/j/ID/deps/lib.py,hdfs:///r.zip", "--files", "/j/ID/deps/lookup.csv",
                    "/j/ID/app/it's main.py", "in put", "--flag"]


# ----------------------------------------------------------------------------- state

@pytest.mark.parametrize("rec, state", [
    ({"exit_code": None, "alive": True, "pgid": 5}, ("running", "")),
    ({"exit_code": 0, "alive": False, "pgid": 5}, ("finished", "")),
    ({"exit_code": 0, "alive": True, "pgid": 5}, ("finished", "")),   # exiting right now
    ({"exit_code": 3, "alive": False, "pgid": 5}, ("failed", "")),
    ({"exit_code": None, "alive": False, "pgid": 5, "killed": True}, ("killed", "")),
    ({"exit_code": 0, "alive": False, "pgid": 5, "killed": True}, ("killed", "")),
])
def test_derive_state(rec, state):
    assert jobs.derive_state(rec) == state


def test_a_vanished_runner_is_lost():
    state, note = jobs.derive_state({"exit_code": None, "alive": False, "pgid": 5})
    assert state == "failed" and "lost" in note
    assert jobs.derive_state({"exit_code": None, "alive": False, "pgid": None})[0] == "failed"


def test_job_from_raw_durations():
    rec = {"id": "20261124-231501-ab12", "meta": {"app": "a.py", "submitted_epoch": 100.0,
                                                  "submitted_at": "x", "args": ["1"]},
           "exit_code": None, "alive": True, "pgid": 7, "now": 130.0, "ended": None}
    job = jobs.job_from_raw(rec)
    assert (job.state, job.duration_s, job.args) == ("running", 30.0, ("1",))
    done = jobs.job_from_raw(dict(rec, alive=False, exit_code=0, ended=112.5))
    assert (done.state, done.duration_s) == ("finished", 12.5)
    assert set(done.to_dict()) >= {"id", "app", "state", "exit_code", "started",
                                   "duration_s"}


# ----------------------------------------------------------------------------- for real

def test_submit_runs_detached_with_exact_args(master, app_files, monkeypatch):
    runner, facts = master
    app, lib, _ = app_files
    monkeypatch.setenv("STANDIN_SLEEP", "3")
    sub = jobs.prepare(app=str(app), args=("a b", "it's", '"q"', "$HOME", "--x"),
                       conf=("spark.myapp.greeting=hello world",), py_files=(str(lib),))
    t0 = time.monotonic()
    job = jobs.submit(runner=runner, facts=facts, sub=sub)
    assert time.monotonic() - t0 < 2.5, "submit waited for the job"
    assert job.state == "running"
    assert jobs.get_job(runner=runner, facts=facts, job_id=job.id).state == "running"
    seen = io.BytesIO()
    final = jobs.follow(runner=runner, facts=facts, job_id=job.id, on_output=seen.write,
                        interval=0.1, max_interval=0.3)
    assert (final.state, final.exit_code) == ("finished", 0)
    log = seen.getvalue().decode()
    said = json.loads(log.splitlines()[0])
    jobdir = f"{jobs.JOBS_ROOT}/{job.id}"
    assert said["argv"][-6:] == [f"{jobdir}/app/it's main.py", "a b", "it's", '"q"',
                                 "$HOME", "--x"]
    assert "spark.myapp.greeting=hello world" in said["argv"]
    assert said["cwd"] == jobdir and said["out"] == f"{jobdir}/output"
    assert said["job"] == job.id
    assert "to stderr" in log and "tick 2" in log
    assert Path(jobdir, "app", "it's main.py").read_text() == "print('hi')\n"
    meta = json.loads(Path(jobdir, "job.json").read_text())
    assert meta["args"] == ["a b", "it's", '"q"', "$HOME", "--x"]
    listed = jobs.list_jobs(runner=runner, facts=facts)
    assert [(j.id, j.state, j.exit_code) for j in listed] == [(job.id, "finished", 0)]


def test_a_failing_app_reports_its_exit_code(master, app_files, monkeypatch):
    runner, facts = master
    monkeypatch.setenv("STANDIN_EXIT", "3")
    job = jobs.submit(runner=runner, facts=facts, sub=jobs.prepare(app=str(app_files[0])))
    final = jobs.follow(runner=runner, facts=facts, job_id=job.id, on_output=lambda b: None,
                        interval=0.1)
    assert (final.state, final.exit_code) == ("failed", 3)


def test_kill_stops_the_process_group_and_is_idempotent(master, app_files, monkeypatch):
    runner, facts = master
    monkeypatch.setenv("STANDIN_SLEEP", "60")
    job = jobs.submit(runner=runner, facts=facts, sub=jobs.prepare(app=str(app_files[0])))
    pgid = int(Path(jobs.JOBS_ROOT, job.id, "pgid").read_text())
    os.killpg(pgid, 0)                                    # alive
    ended, now = jobs.kill(runner=runner, facts=facts, job_id=job.id, grace=5)
    assert now and ended.state == "killed"
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    again, now = jobs.kill(runner=runner, facts=facts, job_id=job.id)
    assert not now and again.state == "killed"
    monkeypatch.setenv("STANDIN_SLEEP", "0")
    done = jobs.submit(runner=runner, facts=facts, sub=jobs.prepare(app=str(app_files[0])))
    _wait_ended(runner, facts, done.id)
    after, now = jobs.kill(runner=runner, facts=facts, job_id=done.id)
    assert not now and after.state == "finished"


def test_unknown_job_is_not_found(master):
    runner, facts = master
    with pytest.raises(errors.NotFoundError, match="no job 20261124-231501-ab12"):
        jobs.get_job(runner=runner, facts=facts, job_id="20261124-231501-ab12")
    with pytest.raises(errors.NotFoundError):
        jobs.kill(runner=runner, facts=facts, job_id="20261124-231501-ab12")


def test_logs_without_follow_stop_at_the_end(master, app_files, monkeypatch):
    runner, facts = master
    monkeypatch.setenv("STANDIN_SLEEP", "30")
    job = jobs.submit(runner=runner, facts=facts, sub=jobs.prepare(app=str(app_files[0])))
    time.sleep(1.5)
    seen = io.BytesIO()
    t0 = time.monotonic()
    now = jobs.follow(runner=runner, facts=facts, job_id=job.id, on_output=seen.write,
                      until_end=False)
    assert time.monotonic() - t0 < 5 and now.state == "running"
    assert b"tick 0" in seen.getvalue()
    jobs.kill(runner=runner, facts=facts, job_id=job.id, grace=2)


def test_fetch_output_brings_the_folder_and_the_log(master, app_files, tmp_path):
    runner, facts = master
    job = jobs.submit(runner=runner, facts=facts, sub=jobs.prepare(app=str(app_files[0])))
    _wait_ended(runner, facts, job.id)
    nested = Path(jobs.JOBS_ROOT, job.id, "output", "sub dir")
    nested.mkdir()
    (nested / "x.csv").write_text("1,2\n")
    dest = tmp_path / "home" / "results"
    got = jobs.fetch_output(runner=runner, facts=facts, job_id=job.id, dest=dest)
    assert [str(p) for p in got] == ["driver.log", "part-0.txt", "sub dir/x.csv"]
    assert (dest / "part-0.txt").read_text() == "result\n"
    assert "to stderr" in (dest / "driver.log").read_text()


def test_unpacking_never_writes_outside(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("output/../../evil.txt", "elsewhere.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    dest = tmp_path / "d"
    dest.mkdir()

    class Fake:
        def run(self, node, command, **kw):
            return CommandResult(base64.b64encode(buf.getvalue()).decode(), "", 0)
    with pytest.raises(errors.SSHError, match="could not be unpacked"):
        jobs.fetch_output(runner=Fake(), facts=_facts(), job_id="20261124-231501-ab12",
                          dest=dest)
    assert not (tmp_path / "evil.txt").exists() and not (dest / "elsewhere.txt").exists()


# ----------------------------------------------------------------------------- run

def test_run_refuses_an_output_folder_with_files(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(errors.UsageError, match="already holds files"):
        oneshot.check_output_dir(tmp_path)
    assert oneshot.check_output_dir(tmp_path / "new") == tmp_path / "new"


class _Launched:
    identity_file = "/k"


def _fake_run(monkeypatch, master, *, follow):
    """oneshot.run_job with launch/destroy/open_cluster stood in; the job runs locally."""
    runner, facts = master
    calls = []
    monkeypatch.setattr(oneshot.cluster_mod, "launch",
                        lambda **kw: calls.append("launch") or _Launched())
    monkeypatch.setattr(oneshot.cluster_mod, "destroy",
                        lambda **kw: calls.append("destroy") or {"servers": 2})

    class Access:
        def __init__(self):
            self.facts = facts

        def runner(self):
            return runner
    monkeypatch.setattr(oneshot, "open_cluster", lambda **kw: Access())
    monkeypatch.setattr(oneshot, "deployed_facts", lambda **kw: facts)
    if follow is not None:
        monkeypatch.setattr(oneshot.jobs, "follow", follow)
    return calls


def _spec():
    from spark_openstack.config import LaunchSpec
    return LaunchSpec(cluster_name="run-abc", workers=1, keypair="k", image="i", flavor="f")


def test_run_fetches_and_destroys_on_success_and_failure(master, app_files, tmp_path,
                                                         monkeypatch):
    calls = _fake_run(monkeypatch, master, follow=None)
    for code in (0, 4):
        monkeypatch.setenv("STANDIN_EXIT", str(code))
        out = tmp_path / f"out-{code}"
        result = oneshot.run_job(provider=None, spec=_spec(),
                                 sub=jobs.prepare(app=str(app_files[0])), output_dir=out)
        assert result.exit_code == code and result.destroyed == {"servers": 2}
        assert (out / "part-0.txt").exists() and (out / "driver.log").exists()
    assert calls == ["launch", "destroy", "launch", "destroy"]


def test_run_destroys_when_interrupted_unless_kept(master, app_files, tmp_path,
                                                   monkeypatch):
    def interrupted(**kw):
        raise KeyboardInterrupt
    calls = _fake_run(monkeypatch, master, follow=interrupted)
    with pytest.raises(errors.Interrupted, match="destroyed") as info:
        oneshot.run_job(provider=None, spec=_spec(), sub=jobs.prepare(app=str(app_files[0])),
                        output_dir=tmp_path / "o1")
    assert info.value.exit_code == 130 and calls == ["launch", "destroy"]
    with pytest.raises(errors.Interrupted, match="kept"):
        oneshot.run_job(provider=None, spec=_spec(), sub=jobs.prepare(app=str(app_files[0])),
                        output_dir=tmp_path / "o2", keep=True)
    assert calls == ["launch", "destroy", "launch"]


def test_run_destroys_when_the_submit_breaks(master, app_files, tmp_path, monkeypatch):
    def broken(**kw):
        raise errors.SSHError("connection lost")
    calls = _fake_run(monkeypatch, master, follow=None)
    monkeypatch.setattr(oneshot.jobs, "submit", broken)
    with pytest.raises(errors.SSHError, match="connection lost"):
        oneshot.run_job(provider=None, spec=_spec(), sub=jobs.prepare(app=str(app_files[0])),
                        output_dir=tmp_path / "o")
    assert calls == ["launch", "destroy"]


# ----------------------------------------------------------------------------- cli

def test_submit_passes_every_word_after_app_to_the_app(monkeypatch, app_files):
    from spark_openstack import cli
    seen = {}

    def stop(**kwargs):
        seen.update(kwargs)
        raise errors.UsageError("stop here")
    monkeypatch.setattr(jobs, "prepare", stop)
    code = cli.main(["submit", "-c", "demo", "--conf", "spark.a=1", "--py-files", "a.py",
                     str(app_files[0]), "--flag", "-c", "x y", "--conf", "k"])
    assert code == 2
    assert seen["app"] == str(app_files[0])
    assert seen["args"] == ("--flag", "-c", "x y", "--conf", "k")
    assert seen["conf"] == ("spark.a=1",) and seen["py_files"] == ("a.py",)


def test_run_takes_launch_options_and_refuses_a_used_output(monkeypatch, app_files,
                                                            tmp_path):
    from spark_openstack import cli
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("")
    launched = []
    monkeypatch.setattr(oneshot.cluster_mod, "launch", lambda **kw: launched.append(kw))
    code = cli.main(["run", "-s", "1", "-k", "kp", "-i", "img", "--flavor", "f",
                     "--allowed-cidr", "10.0.0.1/32", "--output", str(used),
                     str(app_files[0]), "arg"])
    assert code == 2 and launched == []
