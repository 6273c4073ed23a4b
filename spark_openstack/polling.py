"""The one way this tool waits: poll with a deadline, backoff with jitter, transient errors
skipped, and an abort that ends every wait at once.

Why one primitive: a wait that forgets its deadline, sleeps through Ctrl-C or dies on the
first flaky answer is how a launch hangs or rolls back for nothing. ``ABORT`` is set by
the CLI's signal handler; every ``poll`` in every thread then raises ``Interrupted``
within one sleep slice, so worker threads stop and the cleanup can run.
"""
from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from typing import Callable, Iterator, TypeVar

from .errors import Interrupted, TimeoutError_, one_line

T = TypeVar("T")

#: Set on Ctrl-C/SIGTERM; every poll (in any thread) then stops with ``Interrupted``.
ABORT = threading.Event()

_SLICE = 0.5     # a sleeping poll notices ABORT within this many seconds


def sleep(seconds: float, *, abort: threading.Event | None = None) -> None:
    """Sleep that ends early, raising ``Interrupted``, when an abort is signalled."""
    events = [e for e in (ABORT, abort) if e is not None]
    end = time.monotonic() + max(0.0, seconds)
    while True:
        for event in events:
            if event.is_set():
                raise Interrupted("stopped while waiting (interrupted)")
        left = end - time.monotonic()
        if left <= 0:
            return
        events[0].wait(min(left, _SLICE))


def poll(check: Callable[[], T | None], *, timeout: float | None, what: str,
         interval: float = 1.0, max_interval: float = 10.0, backoff: float = 1.5,
         transient: tuple[type[BaseException], ...] = (),
         fatal: tuple[type[BaseException], ...] = (),
         abort: threading.Event | None = None, hint: str = "",
         describe: Callable[[], str] | None = None,
         reset: Callable[[], bool] | None = None) -> T:
    """Call ``check`` until it returns something other than ``None`` and return that.

    Between calls it sleeps ``interval`` growing by ``backoff`` up to ``max_interval``,
    each sleep jittered by +-20 % so many waiters do not poll in step, and never past the
    deadline. Exceptions of a ``transient`` type count as "not yet" (the last one is named
    in the timeout error); any other exception ends the wait, and so does one of a
    ``fatal`` type even when it is also transient (a changed host key is an ``SSHError``
    that waiting cannot fix). On timeout raises
    ``TimeoutError_`` naming ``what`` and the last state (``describe()`` if given).

    ``timeout=None`` is a wait without a deadline, for what only ends by itself or by
    the user (following a job's log until the job ends): ``check`` answering, raising,
    or an abort end it. ``reset``, called after each "not yet", restarts the backoff
    from ``interval`` when it returns true (a follow that just got output polls fast
    again while output flows).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = interval
    last = "no answer yet"
    while True:
        sleep(0, abort=abort)                 # an abort before the first call counts too
        try:
            result = check()
        except transient as exc:              # noqa: PERF203 - retried by design
            if fatal and isinstance(exc, fatal):
                raise
            last = one_line(exc)
        else:
            if result is not None:
                return result
            if describe is not None:
                last = describe()
        if reset is not None and reset():
            delay = interval
        pause = delay * random.uniform(0.8, 1.2)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError_(f"{what}: not done after {timeout:.0f}s ({last})",
                                    hint=hint)
            pause = min(remaining, pause)
        sleep(pause, abort=abort)
        delay = min(max_interval, delay * backoff)


@contextlib.contextmanager
def shielded_cleanup() -> Iterator[None]:
    """Run a cleanup to its end: a second Ctrl-C or SIGTERM is ignored meanwhile (it would
    leave resources behind), and the abort that stopped the work does not stop the
    cleanup's own waits. Signals are restored afterwards."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
    aborted = ABORT.is_set()
    ABORT.clear()
    try:
        yield
    finally:
        if aborted:
            ABORT.set()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
