"""Remote waits as bounded polls of a one-shot probe.

A wait for something on a node (a daemon gone, a port open, a file written) is never a
shell loop whose count stands in for a deadline: it is ``polling.poll`` calling one short,
non-looping probe command per try. So every remote wait has a real deadline, backs off,
and ends at once on Ctrl-C (``polling.ABORT``), like every local one.
"""
from __future__ import annotations

from . import polling
from .errors import TimeoutError_

#: A probe is one short command; one that hangs this long counts as "not yet".
PROBE_TIMEOUT = 30


def wait_for_probe(*, runner, node, command: str, timeout: float, what: str,
                   interval: float = 0.2, max_interval: float = 1.0,
                   probe_timeout: float = PROBE_TIMEOUT, hint: str = ""):
    """Run ``command`` on ``node`` (``runner.run``, unchecked) until it exits 0 and return
    that ``CommandResult``; ``TimeoutError_`` naming ``what`` after ``timeout`` seconds.

    A probe that exits non-zero, or itself times out, means "not yet"; a node that cannot
    be reached (``SSHError``) ends the wait, as it ended the remote loops this replaces.
    """
    last: list = []

    def probe():
        result = runner.run(node, command, timeout=probe_timeout, check=False)
        last[:] = [result]
        return result if result.exited == 0 else None

    def describe() -> str:
        if not last:
            return "no answer yet"
        said = (last[0].stderr or last[0].stdout or "").strip().splitlines()
        return f"the probe exited {last[0].exited}" + (f": {said[-1][:200]}" if said else "")

    return polling.poll(probe, timeout=timeout, what=what, interval=interval,
                        max_interval=max_interval, backoff=1.5, transient=(TimeoutError_,),
                        hint=hint, describe=describe)
