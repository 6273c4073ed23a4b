"""The one polling primitive: deadline, backoff, transient errors, abort, shielded cleanup."""
from __future__ import annotations

import signal
import threading
import time

import pytest

from spark_openstack import polling
from spark_openstack.errors import Interrupted, SSHError, TimeoutError_


@pytest.fixture(autouse=True)
def _no_abort():
    polling.ABORT.clear()
    yield
    polling.ABORT.clear()


def test_returns_the_first_answer_and_skips_transient_errors():
    answers = iter([SSHError("refused"), None, SSHError("reset"), "ready"])

    def check():
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value
    assert polling.poll(check, timeout=5, what="x", interval=0.01,
                        transient=(SSHError,)) == "ready"


def test_other_errors_end_the_wait_at_once():
    def check():
        raise ValueError("broken")
    with pytest.raises(ValueError):
        polling.poll(check, timeout=5, what="x", interval=0.01, transient=(SSHError,))


def test_timeout_names_what_and_the_last_state():
    started = time.monotonic()
    with pytest.raises(TimeoutError_) as info:
        polling.poll(lambda: None, timeout=0.3, what="servers ACTIVE", interval=0.05,
                     describe=lambda: "[demo-worker-2] BUILD")
    assert time.monotonic() - started < 1.5
    assert "servers ACTIVE" in info.value.message and "[demo-worker-2] BUILD" in info.value.message


def test_backoff_grows_but_never_sleeps_past_the_deadline():
    calls = []
    with pytest.raises(TimeoutError_):
        polling.poll(lambda: calls.append(time.monotonic()), timeout=1.0, what="x",
                     interval=0.05, backoff=2.0, max_interval=0.4)
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps[-1] > gaps[0] and max(gaps) < 0.4 * 1.2 + 0.1


def test_abort_stops_a_long_wait_in_another_thread_within_a_second():
    outcome = {}

    def waiter():
        try:
            polling.poll(lambda: None, timeout=600, what="never", interval=30)
        except Interrupted as exc:
            outcome["error"] = exc
            outcome["at"] = time.monotonic()
    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)
    aborted_at = time.monotonic()
    polling.ABORT.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and "error" in outcome
    assert outcome["at"] - aborted_at < 1.0


def test_shielded_cleanup_ignores_signals_runs_its_own_waits_and_restores():
    polling.ABORT.set()                          # the work was interrupted
    before = signal.getsignal(signal.SIGTERM)
    with polling.shielded_cleanup():
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        assert polling.poll(lambda: True, timeout=1, what="cleanup wait") is True
    assert signal.getsignal(signal.SIGTERM) == before
    assert polling.ABORT.is_set()                # still interrupted after the cleanup


def test_no_deadline_waits_until_the_check_answers():
    answers = iter([None] * 5 + ["done"])
    assert polling.poll(lambda: next(answers), timeout=None, what="x",
                        interval=0.01, max_interval=0.02) == "done"


def test_no_deadline_still_ends_on_an_abort():
    polling.ABORT.set()
    with pytest.raises(Interrupted):
        polling.poll(lambda: None, timeout=None, what="never", interval=30)


def test_reset_restarts_the_backoff_from_interval(monkeypatch):
    slept = []
    monkeypatch.setattr(polling, "sleep", lambda seconds, abort=None: slept.append(seconds))
    monkeypatch.setattr(polling.random, "uniform", lambda a, b: 1.0)
    answers = iter([None] * 6 + ["done"])
    progress = iter([False, False, True, False, False, False])
    assert polling.poll(lambda: next(answers), timeout=None, what="x", interval=1.0,
                        max_interval=10.0, backoff=2.0,
                        reset=lambda: next(progress)) == "done"
    assert [s for s in slept if s] == [1.0, 2.0, 1.0, 2.0, 4.0, 8.0]
