"""Every command of the CLI is reached by a unit test: its help, and one refusal of bad
input that needs no cloud (exit 2, a message naming what is wrong, the cloud untouched).

A command added to the CLI without an entry in ``REFUSALS`` fails
``test_every_command_has_a_refusal_here``."""
from __future__ import annotations

import pytest

from support.cli import all_commands, invoke, no_cloud, run_main

pytestmark = pytest.mark.usefixtures("no_user_config")

BAD = ("-c", "Bad_Name")
BAD_NAME = "cluster name 'Bad_Name'"
LAUNCH = ("-k", "k", "-i", "img", "--allowed-cidr", "10.0.0.0/8")
NOT_A_JOB = "'job-1' is not a job id"

#: command -> (argv after the command, what stderr must say)
REFUSALS = {
    "add-workers": ((*BAD, "-n", "1"), BAD_NAME),
    "batch destroy": (("--prefix", "Bad_Name", "--yes"), "Bad_Name"),
    "batch launch": (("--prefix", "Bad_Name", "--count", "2", "--roster", "{tmp}/roster",
                      *LAUNCH), "Bad_Name"),
    "batch run-command": (("--prefix", "Bad_Name", "hostname"), "Bad_Name"),
    "batch status": (("--prefix", "Bad_Name"), "Bad_Name"),
    "configure": (("--allowed-cidr", "not-a-cidr"),
                  "'not-a-cidr' (--allowed-cidr) is not an IP network"),
    "configure-cluster": (BAD, BAD_NAME),
    "copy-file": ((*BAD, "{tmp}/app.py", "/tmp/app.py"), BAD_NAME),
    "create-image": (("-n", "img", "-k", "k", "--allowed-cidr", "10.0.0.0/8"),
                     "no base image given (--base-image)"),
    "deploy": (BAD, BAD_NAME),
    "describe": (BAD, BAD_NAME),
    "destroy": ((*BAD, "--yes"), BAD_NAME),
    "jobs": (BAD, BAD_NAME),
    "kill": (("-c", "demo", "job-1"), NOT_A_JOB),
    "launch": ((*BAD, *LAUNCH), BAD_NAME),
    "list": (("extra",), "unexpected extra argument (extra)"),
    "login": (BAD, BAD_NAME),
    "logs": (("-c", "demo", "job-1"), NOT_A_JOB),
    "notebook": (BAD, BAD_NAME),
    "reap": (("extra",), "unexpected extra argument (extra)"),
    "remove-workers": (BAD, BAD_NAME),
    "run": ((*BAD, *LAUNCH, "{tmp}/app.py"), BAD_NAME),
    "run-command": ((*BAD, "hostname"), BAD_NAME),
    "start": (BAD, BAD_NAME),
    "status": (BAD, BAD_NAME),
    "stop": (BAD, BAD_NAME),
    "submit": ((*BAD, "{tmp}/app.py"), BAD_NAME),
}


def test_every_command_has_a_refusal_here():
    assert sorted(REFUSALS) == all_commands()


@pytest.mark.parametrize("command", all_commands())
def test_every_command_has_help(command):
    result = invoke(*command.split(), "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {command} [OPTIONS]" in result.output
    assert "-h, --help" in result.output


@pytest.mark.parametrize("command", sorted(REFUSALS))
def test_every_command_refuses_bad_input_before_the_cloud(command, tmp_path, monkeypatch,
                                                          capsys, no_user_config):
    (tmp_path / "app.py").write_text("print('hello')\n")
    args, says = REFUSALS[command]
    no_cloud(monkeypatch)
    argv = [*command.split(), *(a.format(tmp=tmp_path) for a in args)]
    code, out, err = run_main(argv, capsys)
    assert code == 2, (out, err)
    assert says in err
    assert "Traceback" not in err
    assert not no_user_config.exists()       # nothing written on the way
