"""Jobs (submit/jobs/logs/kill) and the one-shot run, without a cloud.

The master is simulated by ``LocalMaster``: its commands run in a local bash and the jobs
root is a temp folder, so the runner script, the detached start, the master-side reader
(list/poll/kill) and the output download all run for real here; spark-submit is a
stand-in that prints its argv as JSON (and can sleep or fail).
"""
from __future__ import annotations

import dataclasses
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
from spark_openstack.transport import CommandResult

SUBMIT_STANDIN = textwrap.dedent("""\
    #!/usr/bin/env python3
    # spark-submit stand-in: prints its argv and environment, then sleeps/fails on request
    import json, os, signal, sys, time
    if os.environ.get("STANDIN_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(),
                      "out": os.environ.get("SPARK_OPENSTACK_OUTPUT_DIR"),
                      "job": os.environ.get("SPARK_OPENSTACK_JOB_ID")}), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    out = os.environ["SPARK_OPENSTACK_OUTPUT_DIR"]
    with open(os.path.join(out, "part-0.txt"), "w") as f:
        f.write("result\\n")
    if os.environ.get("STANDIN_STARVE"):
        print("INFO Client: Submitted application application_1700000000000_0007", flush=True)
    for i in range(int(os.environ.get("STANDIN_STARVE", "0"))):
        print("WARN YarnScheduler: Initial job has not accepted any resources; check your "
              "cluster UI to ensure that workers are registered and have sufficient "
              "resources", flush=True)
        time.sleep(0.2)
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


def test_kill_sigkills_a_job_that_ignores_sigterm_after_the_grace(master, app_files,
                                                                   monkeypatch):
    """The grace is a bounded poll of the one-shot ``gone`` probe, then SIGKILL: no loop
    runs on the master."""
    runner, facts = master
    monkeypatch.setenv("STANDIN_SLEEP", "60")
    monkeypatch.setenv("STANDIN_IGNORE_TERM", "1")
    job = jobs.submit(runner=runner, facts=facts, sub=jobs.prepare(app=str(app_files[0])))
    pgid = int(Path(jobs.JOBS_ROOT, job.id, "pgid").read_text())
    log = Path(jobs.JOBS_ROOT, job.id, "driver.log")
    deadline = time.monotonic() + 10
    while b"tick" not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)                   # the stand-in has set its SIGTERM handler
    runner.commands.clear()
    t0 = time.monotonic()
    ended, now = jobs.kill(runner=runner, facts=facts, job_id=job.id, grace=1.5)
    took = time.monotonic() - t0
    assert now and ended.state == "killed"
    assert 1.4 <= took < 10
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert any(" sigkill " in c for c in runner.commands)
    assert sum(" gone " in c for c in runner.commands) >= 2
    assert "time.sleep" not in jobs._MASTER_PY


class _StartRunner:
    """A fake master for ``wait_started``: the start command, then ``answers`` for the
    pgid probe, one per call (the last repeats)."""

    def __init__(self, answers, start=CommandResult("", "", 0)):
        self.answers, self.start, self.commands = list(answers), start, []

    def run(self, node, command, *, timeout=None, check=True):
        self.commands.append(command)
        if "run.sh" in command:
            return self.start
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_wait_started_polls_a_one_shot_pgid_probe():
    facts = _facts()
    not_yet = CommandResult("", "", 1)
    runner = _StartRunner([not_yet, not_yet, CommandResult("4242\n", "", 0)])
    pgid = jobs.wait_started(runner=runner, node=facts.master, job_id="j1",
                             jobdir="/x/my job")
    assert pgid == 4242
    start, *probes = runner.commands
    assert start.startswith("cd '/x/my job' && (setsid nohup ./run.sh")
    assert probes == ["test -s '/x/my job/pgid' && cat '/x/my job/pgid'"] * 3
    assert not any("seq" in c or "sleep" in c or "for " in c for c in runner.commands)


def test_wait_started_gives_up_after_its_timeout():
    facts = _facts()
    runner = _StartRunner([CommandResult("", "", 1)])
    t0 = time.monotonic()
    with pytest.raises(errors.DeployError, match=r"job j1 did not start on demo-master: "
                                                 r"no pgid after 1s"):
        jobs.wait_started(runner=runner, node=facts.master, job_id="j1", jobdir="/x/j",
                          timeout=0.6)
    assert 0.5 <= time.monotonic() - t0 < 3
    failing = _StartRunner([], start=CommandResult("", "cd: /x/j: No such file", 1))
    with pytest.raises(errors.DeployError, match="did not start on demo-master: cd: /x/j"):
        jobs.wait_started(runner=failing, node=facts.master, job_id="j1", jobdir="/x/j")
    assert len(failing.commands) == 1


def test_wait_started_ends_on_an_abort():
    from spark_openstack import polling
    facts = _facts()
    runner = _StartRunner([CommandResult("", "", 1)])
    polling.ABORT.set()
    try:
        with pytest.raises(errors.Interrupted):
            jobs.wait_started(runner=runner, node=facts.master, job_id="j1", jobdir="/x/j")
    finally:
        polling.ABORT.clear()


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
    monkeypatch.setattr(oneshot.launch_mod, "launch",
                        lambda **kw: calls.append("launch") or _Launched())
    monkeypatch.setattr(oneshot.ledger, "destroy",
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
    monkeypatch.setattr(oneshot.launch_mod, "launch", lambda **kw: launched.append(kw))
    code = cli.main(["run", "-s", "1", "-k", "kp", "-i", "img", "--flavor", "f",
                     "--allowed-cidr", "10.0.0.1/32", "--output", str(used),
                     str(app_files[0]), "arg"])
    assert code == 2 and launched == []


# ----------------------------------------------------------------------------- resources

_STARVE = (b"26/01/01 10:00:15 WARN YarnScheduler: Initial job has not accepted any "
           b"resources; check your cluster UI\n")


def _yarn_facts(**kw) -> ClusterFacts:
    master = Node(name="demo-master", role="master", private_ip="10.0.0.10", vcpus=2,
                  ram_mb=4096)
    workers = tuple(Node(name=f"demo-worker-{i}", role="worker", private_ip=f"10.0.0.2{i}",
                         vcpus=2, ram_mb=4096) for i in (1, 2))
    return ClusterFacts(cluster_name="demo", master=master, workers=workers,
                        services=("hdfs", "yarn", "spark"), **kw)


def test_resource_watch_needs_a_streak_past_the_timeout():
    watch = jobs.ResourceWatch(timeout=60)
    watch.feed(b"INFO Client: Submitted application application_17_0001\n", now=0)
    assert watch.app_id == "application_17_0001"
    for t in range(0, 60, 15):
        watch.feed(_STARVE, now=t)
        assert watch.verdict(now=t) is None
    watch.feed(_STARVE, now=60)
    assert watch.verdict(now=61) == ("no executors", 61)
    # an executor registers: the streak is over
    watch.feed(b"INFO YarnSchedulerBackend$YarnDriverEndpoint: Registered executor "
               b"NettyRpcEndpointRef(spark-client://Executor) with ID 1\n", now=62)
    assert watch.verdict(now=200) is None
    # a warning seen long ago is no proof of waiting now; a line split across chunks counts
    watch.feed(_STARVE[:20], now=300)
    watch.feed(_STARVE[20:], now=300)
    assert watch.starved_since == 300 and watch.verdict(now=300 + 30) is None
    assert watch.verdict(now=300 + 400) is None          # silent for long: no verdict


def test_resource_watch_sees_an_application_stuck_accepted():
    watch = jobs.ResourceWatch(timeout=30)
    for t in range(0, 40):
        watch.feed(b"INFO Client: Application report for application_17_0002 "
                   b"(state: ACCEPTED)\n", now=t)
    assert watch.verdict(now=39) == ("accepted", 39)
    watch.feed(b"INFO Client: Application report for application_17_0002 "
               b"(state: RUNNING)\n", now=40)
    assert watch.verdict(now=41) is None
    assert jobs.ResourceWatch(timeout=0).verdict(now=10) is None


@pytest.mark.parametrize("value, mb", [("512m", 512), ("2g", 2048), ("1024", 1024),
                                       ("2048k", 2), ("1g ", 1024), ("lots", None)])
def test_parse_memory_mb(value, mb):
    assert jobs.parse_memory_mb(value) == mb


def test_yarn_request_rounds_as_yarn_does():
    facts = _yarn_facts()
    got = jobs.yarn_request(facts=facts, conf=(("spark.executor.memory", "832m"),))
    assert got["executor"] == {"heap_mb": 832, "overhead_mb": 384, "container_mb": 1280,
                               "cores": 2}
    assert got["am"] == {"heap_mb": 512, "overhead_mb": 384, "container_mb": 896, "cores": 1}
    # the issue's cluster: min-allocation 512 (set by hand) -> 1536 and 1024
    issue = _yarn_facts(hadoop_conf=(("yarn-site.xml", "yarn.scheduler.minimum-allocation-mb",
                                      "512"),))
    got = jobs.yarn_request(facts=issue, conf=(("spark.executor.memory", "832m"),))
    assert (got["executor"]["container_mb"], got["am"]["container_mb"]) == (1536, 1024)


class FakeRM:
    """A runner whose master answers the ResourceManager query with canned JSON."""

    def __init__(self, answer: dict | str, exited: int = 0):
        self.answer, self.exited, self.commands = answer, exited, []

    def run(self, node, command, *, timeout=None, check=True):
        self.commands.append(command)
        out = self.answer if isinstance(self.answer, str) else json.dumps(self.answer)
        return CommandResult(out + "\n", "", self.exited)


# what the master's script prints: each REST answer ({"nodes": {"node": [...]}}) by name
_NODES = {"nodes": {"nodes": {"node": [
    {"nodeHostName": "demo-worker-1", "state": "RUNNING", "usedMemoryMB": 1024,
     "availMemoryMB": 192, "usedVirtualCores": 1, "availableVirtualCores": 1,
     "numContainers": 1},
    {"nodeHostName": "demo-worker-2", "state": "RUNNING", "usedMemoryMB": 0,
     "availMemoryMB": 1216, "usedVirtualCores": 0, "availableVirtualCores": 2,
     "numContainers": 0}]}},
    "apps": {"apps": {"app": [{"id": "application_17_0001", "name": "sum", "state": "RUNNING",
                               "allocatedMB": 1024}]}},
    "app": {"app": {"id": "application_17_0001", "diagnostics": ""}}}


def test_resource_offers_asks_the_rm_on_the_master():
    runner = FakeRM(_NODES)
    facts = _yarn_facts()
    got = jobs.resource_offers(runner=runner, facts=facts, app_id="application_17_0001")
    assert [n["nodeHostName"] for n in got["nodes"]] == ["demo-worker-1", "demo-worker-2"]
    assert "http://10.0.0.10:8088" in runner.commands[0]
    assert "application_17_0001" in runner.commands[0]
    broken = jobs.resource_offers(runner=FakeRM("Traceback: no python", exited=1),
                                  facts=facts)
    assert "could not ask the ResourceManager" in broken["error"]
    down = jobs.resource_offers(runner=FakeRM({"nodes": {"error": "refused"}}), facts=facts)
    assert "refused" in down["error"] and down["nodes"] == []


def test_the_starvation_message_says_asked_against_offered():
    """The issue's cluster: executors of 1216 (832m + 384) rounded to 1536 never fit a
    1216 MB NodeManager, and the AM's 1024 leaves 192 MB."""
    request = {"manager": "yarn", "min_allocation_mb": 512,
               "executor": {"heap_mb": 832, "overhead_mb": 384, "container_mb": 1536,
                            "cores": 1},
               "am": {"heap_mb": 512, "overhead_mb": 384, "container_mb": 1024, "cores": 1}}
    offers = jobs.resource_offers(runner=FakeRM(_NODES), facts=_yarn_facts(),
                                  app_id="application_17_0001")
    text = jobs.starvation_message(job_id="20261124-231501-ab12", kind="no executors",
                                   waited=181, request=request, offers=offers)
    assert "got no executor in 181s" in text
    assert "832m + 384m overhead -> 1536 MB" in text and "minimum-allocation-mb 512" in text
    assert "512m + 384m -> 1024 MB" in text and "needs 2560 MB" in text
    assert "demo-worker-1 (RUNNING): 1216 MB / 2 vcores, free 192 MB / 1 vcores" in text
    assert "demo-worker-2 (RUNNING): 1216 MB / 2 vcores, free 1216 MB" in text
    assert "no running node can ever hold a 1536 MB executor" in text
    stuck = jobs.starvation_message(job_id="20261124-231501-ab12", kind="accepted",
                                    waited=200, request=request,
                                    offers=dict(offers, app={"id": "x", "diagnostics":
                                                "Queue's AM resource limit exceeded."}))
    assert "stayed ACCEPTED" in stuck and "YARN says: Queue's AM resource limit" in stuck
    assert "other applications hold: application_17_0001 sum (RUNNING, 1024 MB)" in stuck


@pytest.mark.parametrize("rec, note", [
    ({"exit_code": None, "alive": True, "pgid": 5, "waiting": True}, "waiting for resources"),
    ({"exit_code": None, "alive": True, "pgid": 5, "waiting": False}, ""),
    ({"exit_code": None, "alive": False, "pgid": 5, "killed": True,
      "killed_reason": "no resources after 180s"}, "no resources after 180s"),
])
def test_jobs_notes_waiting_and_why_killed(rec, note):
    assert jobs.derive_state(rec)[1] == note


def test_an_attached_job_without_resources_is_killed_and_says_why(master, app_files,
                                                                  monkeypatch):
    """For real on the local "master": the driver repeats Spark's starvation warning;
    ``jobs`` shows it waiting; ``follow`` with a timeout asks the RM (faked), kills the
    job with the reason, and raises NoResourcesError (exit code 3)."""
    runner, facts = master
    facts = _yarn_facts(spark_home=facts.spark_home)
    monkeypatch.setenv("STANDIN_STARVE", "100")
    asked = []
    real = jobs.resource_offers

    def offers(**kw):
        asked.append(kw["app_id"])
        return real(runner=FakeRM(_NODES), facts=facts)
    monkeypatch.setattr(jobs, "resource_offers", offers)
    job = jobs.submit(runner=runner, facts=facts, sub=jobs.prepare(app=str(app_files[0])))
    time.sleep(1.0)
    assert jobs.get_job(runner=runner, facts=facts, job_id=job.id).note == \
        "waiting for resources"
    seen = io.BytesIO()
    with pytest.raises(jobs.NoResourcesError) as info:
        jobs.follow(runner=runner, facts=facts, job_id=job.id, on_output=seen.write,
                    resource_timeout=1.5)
    assert info.value.exit_code == 3
    message = str(info.value)
    assert "got no executor" in message and "demo-worker-2" in message
    assert "it was killed" in message and "--resource-timeout" in message
    assert asked == ["application_1700000000000_0007"]
    ended = jobs.get_job(runner=runner, facts=facts, job_id=job.id)
    assert ended.state == "killed" and ended.note.startswith("no resources after")
    [listed] = [j for j in jobs.list_jobs(runner=runner, facts=facts) if j.id == job.id]
    assert listed.note == ended.note


def test_submit_waits_a_bounded_time_by_default(monkeypatch, app_files):
    from spark_openstack import cli
    seen = {}
    monkeypatch.setattr(cli, "_open_access", lambda *a, **k: (_ for _ in ()).throw(
        errors.UsageError("stop here")))
    import click
    command = cli.cli.commands["submit"]
    option = next(p for p in command.params if p.name == "resource_timeout")
    assert option.default == jobs.RESOURCE_TIMEOUT
    assert "0 waits forever" in option.help
    code = cli.main(["submit", "-c", "demo", "--resource-timeout", "5", str(app_files[0])])
    assert code == 2 and not seen and isinstance(command, click.Command)


def test_kill_on_yarn_kills_the_application_first(master, app_files, monkeypatch, tmp_path):
    """The YARN application the driver log names is killed (``yarn application -kill``)
    before the job's processes are signalled; an ended job's is left alone. The real
    ResourceManager's side (KILLED, no container left) is test_yarn_e2e's."""
    runner, facts = master
    hadoop = tmp_path / "hadoop"
    (hadoop / "bin").mkdir(parents=True)
    said = tmp_path / "yarn-calls"
    (hadoop / "bin" / "yarn").write_text(f'#!/bin/sh\necho "$*" >> "{said}"\n')
    (hadoop / "bin" / "yarn").chmod(0o755)
    facts = dataclasses.replace(facts, services=("hdfs", "yarn"), hadoop_home=str(hadoop))
    monkeypatch.setenv("STANDIN_STARVE", "1")       # names application_1700000000000_0007
    monkeypatch.setenv("STANDIN_SLEEP", "60")
    job = jobs.submit(runner=runner, facts=facts, sub=jobs.prepare(app=str(app_files[0])))
    log = Path(jobs.JOBS_ROOT, job.id, "driver.log")
    deadline = time.monotonic() + 20
    while "tick 0" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    ended, now = jobs.kill(runner=runner, facts=facts, job_id=job.id, grace=5)
    assert now and ended.state == "killed"
    calls = said.read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("application ")
    assert calls[0].endswith("-kill application_1700000000000_0007")
    assert "yarn.resourcemanager.connect.max-wait.ms" in calls[0]      # fails fast
    order = [("yarn" if "bin/yarn" in c else "signal") for c in runner.commands
             if "bin/yarn" in c or " kill " in c]
    assert order == ["yarn", "signal"], order
    again, now = jobs.kill(runner=runner, facts=facts, job_id=job.id)
    assert not now and len(said.read_text().splitlines()) == 1     # ended: YARN left alone


class _FollowRunner:
    """A fake master for ``follow``: each poll command gets the next scripted answer
    (an exception is raised); records the offsets asked for."""

    def __init__(self, answers):
        self.answers, self.offsets = list(answers), []

    def run(self, node, command, *, timeout=None, check=True):
        self.offsets.append(int(command.split()[-2]))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return CommandResult(json.dumps(answer) + "\n", "", 0)


def _rec(data: bytes = b"", *, size: int = 0, running: bool = True) -> dict:
    return {"id": "20261124-231501-ab12", "meta": {"app": "a.py"}, "pgid": 7,
            "alive": running, "exit_code": None if running else 0, "killed": False,
            "ended": None, "now": 1.0, "log_size": size,
            "data": base64.b64encode(data).decode()}


def test_follow_is_a_poll_that_reads_ready_chunks_at_once_and_rides_out_ssh_trouble(
        monkeypatch):
    """follow goes through polling.poll (no deadline): the chunks already written are
    read back to back, SSH trouble is "not yet", and the job's end ends it."""
    from spark_openstack import polling
    waits = []
    real_poll = polling.poll

    def spy(check, **kw):
        waits.append(kw)
        return real_poll(check, **kw)
    monkeypatch.setattr(polling, "poll", spy)
    runner = _FollowRunner([_rec(b"ab", size=4), _rec(b"cd", size=4),
                            errors.SSHError("connection reset"), _rec(b"", size=4),
                            _rec(b"ef", size=6, running=False)])
    seen = io.BytesIO()
    final = jobs.follow(runner=runner, facts=_facts(), job_id="20261124-231501-ab12",
                        on_output=seen.write, interval=0.01, max_interval=0.02)
    assert (final.state, seen.getvalue()) == ("finished", b"abcdef")
    assert runner.offsets == [0, 2, 4, 4, 4]
    assert len(waits) == 1 and waits[0]["timeout"] is None


def test_follow_gives_up_after_its_patience_with_ssh(monkeypatch):
    monkeypatch.setattr(jobs, "FOLLOW_PATIENCE", 0.2)
    runner = _FollowRunner([errors.SSHError("connection refused")] * 1000)
    with pytest.raises(errors.SSHError, match="lost the connection to demo-master while "
                                              "following job 20261124-231501-ab12"):
        jobs.follow(runner=runner, facts=_facts(), job_id="20261124-231501-ab12",
                    on_output=lambda b: None, interval=0.05, max_interval=0.1)
