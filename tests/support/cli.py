"""The one CLI runner of the unit tests: ``run_main`` (``cli.main`` as the console script
calls it: exit code, stdout, stderr; errors mapped to exit codes), ``invoke`` (click's
runner, for help texts) and ``no_cloud`` (the cloud may not be touched)."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner, Result

from spark_openstack import cli


def run_main(argv, capsys) -> tuple[int, str, str]:
    """``spark-openstack ARGV`` in this process: ``(exit code, stdout, stderr)``."""
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def invoke(*argv: str) -> Result:
    """``spark-openstack ARGV`` through click's test runner (output captured in the result)."""
    return CliRunner().invoke(cli.cli, list(argv))


def no_cloud(monkeypatch) -> None:
    """Any use of the cloud from now on fails the test."""
    monkeypatch.setattr(cli.AppContext, "provider",
                        property(lambda self: pytest.fail("must not touch the cloud")))


def all_commands(group: click.Group = cli.cli, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every command of the CLI by its full name (``batch launch``), groups expanded."""
    out = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += all_commands(command, (*prefix, name))
        else:
            out.append(" ".join((*prefix, name)))
    return out
