"""Waiting for cloud-init is a bounded poll of ``cloud-init status`` (one short probe a
round through polling.poll), never a remote ``--wait`` that blocks for as long as
cloud-init runs."""
from __future__ import annotations

import types

import pytest

from spark_openstack import errors, ssh


class StatusAnswers:
    """A node whose ``cloud-init status`` says each of ``states`` in turn (the last one
    for ever); records every command."""

    host = "10.0.0.5"

    def __init__(self, *states, exited_when_done: int = 0):
        self.states = list(states)
        self.exited_when_done = exited_when_done
        self.commands: list[str] = []

    def run(self, command, **kw):
        self.commands.append(command)
        assert kw.get("timeout"), "every probe is bounded"
        if command.startswith("tail"):
            return types.SimpleNamespace(stdout="the user-data's last words", stderr="",
                                         exited=0)
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        finished = state not in ssh.CLOUD_INIT_UNFINISHED
        return types.SimpleNamespace(stdout=f"status: {state}\ndetail:\nx\n", stderr="",
                                     exited=self.exited_when_done if finished else 0)


def test_polls_until_cloud_init_is_done_and_never_blocks_on_the_node():
    node = StatusAnswers("not run", "running", "running", "done")
    assert ssh.wait_for_cloud_init(node, timeout=30).startswith("status: done")
    assert len(node.commands) == 4
    assert all("--wait" not in c for c in node.commands)


def test_a_cloud_init_that_never_finishes_is_a_timeout_naming_the_node_and_its_state():
    node = StatusAnswers("running")
    with pytest.raises(errors.TimeoutError_) as caught:
        ssh.cloud_init_status(node, timeout=1.5)
    assert "cloud-init on 10.0.0.5" in caught.value.message
    assert "running" in caught.value.message
    assert "cloud-init-output.log" in caught.value.hint


def test_a_failed_cloud_init_is_an_error_with_its_log():
    node = StatusAnswers("running", "error", exited_when_done=1)
    with pytest.raises(errors.SSHError) as caught:
        ssh.wait_for_cloud_init(node, timeout=30)
    assert "cloud-init failed (exit 1)" in caught.value.message
    assert "the user-data's last words" in caught.value.message


def test_degraded_done_counts_as_finished():
    node = StatusAnswers("running", "degraded done", exited_when_done=2)
    assert "degraded done" in ssh.wait_for_cloud_init(node, timeout=30)


@pytest.mark.parametrize("text, state", [
    ("status: running\n", "running"),
    ("boot_status_code: enabled\nstatus: done\n", "done"),
    ("", ""),
])
def test_the_state_is_read_from_the_status_line(text, state):
    assert ssh.cloud_init_state(text) == state
