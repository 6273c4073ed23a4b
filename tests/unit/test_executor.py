"""The one executor: per-node work, a few calls at once, one call in the background."""
from __future__ import annotations

import threading
import time

import pytest

from spark_openstack import executor
from spark_openstack.errors import NodeErrors, ValidationError


def test_run_calls_returns_every_result_by_label_and_runs_them_at_once():
    began = time.monotonic()
    got = executor.run_calls({"a": lambda: (time.sleep(0.3), 1)[1],
                              "b": lambda: (time.sleep(0.3), 2)[1]}, what="x")
    assert got == {"a": 1, "b": 2}
    assert time.monotonic() - began < 0.55


def test_run_calls_raises_a_single_failure_as_it_is():
    def bad():
        raise ValidationError("no such flavor", hint="pick one")
    with pytest.raises(ValidationError) as info:
        executor.run_calls({"ok": lambda: 1, "flavor": bad}, what="look-ups")
    assert info.value.hint == "pick one"


def test_run_calls_reports_several_failures_by_label():
    def bad(text):
        def call():
            raise RuntimeError(text)
        return call
    with pytest.raises(NodeErrors) as info:
        executor.run_calls({"hdfs": bad("down"), "spark": bad("gone"), "ok": lambda: 1},
                           what="start services")
    assert "[hdfs] RuntimeError: down" in info.value.message
    assert "[spark] RuntimeError: gone" in info.value.message


def test_run_per_node_reports_every_failed_node():
    def step(node):
        if node in ("w1", "w3"):
            raise ValidationError(f"{node} broke")
        return node.upper()
    with pytest.raises(NodeErrors) as info:
        executor.run_per_node(step, ["w1", "w2", "w3"], what="configure")
    assert "[w1] w1 broke" in info.value.message and "[w3] w3 broke" in info.value.message
    assert executor.run_per_node(str.upper, ["a", "b"]) == {"a": "A", "b": "B"}


def test_in_background_runs_beside_the_caller_and_hands_over_its_exception():
    started = threading.Event()

    def slow():
        started.set()
        time.sleep(0.2)
        return 42
    job = executor.in_background(slow, name="t-slow")
    assert started.wait(1) and not job.done()
    assert job.result(timeout=2) == 42

    def fails():
        raise ValueError("nope")
    with pytest.raises(ValueError):
        executor.in_background(fails, name="t-fail").result(timeout=2)
