"""The one way this tool runs things side by side.

Per-node work is a plain function ``fn(node) -> result`` (``run_per_node``); a few
different calls at once are ``run_calls``; one call beside the caller's own work is
``in_background``. Every call runs (a failure of one does not cancel the others), every
failure is collected, and they are raised together as one ``NodeErrors`` whose message
lists ``[node] message`` lines. No other module starts a thread or a pool.
"""
from __future__ import annotations

import concurrent.futures
import threading
from typing import Callable, Iterable, TypeVar

from .errors import NodeErrors, SparkOpenstackError, one_line

N = TypeVar("N")
R = TypeVar("R")

#: Per-node steps mostly wait on a remote command, so every node of a 64-worker cluster
#: runs at once; callers that open connections through one gateway pass their own bound.
DEFAULT_MAX_WORKERS = 64


def _node_name(node) -> str:
    return getattr(node, "name", None) or str(node)


def run_per_node(
    fn: Callable[[N], R],
    nodes: Iterable[N],
    *,
    what: str = "node step",
    max_workers: int = DEFAULT_MAX_WORKERS,
    on_done: Callable[[N, R | None, BaseException | None], None] | None = None,
) -> dict[str, R]:
    """Run ``fn`` on every node with at most ``max_workers`` at once.

    Returns ``{node_name: result}`` when all succeed; otherwise raises ``NodeErrors``
    naming every node that failed. ``on_done`` (optional) is called as each node
    finishes, for progress output.
    """
    nodes = list(nodes)
    results: dict[str, R] = {}
    failures: dict[str, str] = {}
    hints: set[str] = set()
    if not nodes:
        return results
    workers = max(1, min(max_workers, len(nodes)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                               thread_name_prefix="node") as pool:
        futures = {pool.submit(fn, node): node for node in nodes}
        try:
            for fut in concurrent.futures.as_completed(futures):
                node = futures[fut]
                name = _node_name(node)
                try:
                    results[name] = fut.result()
                except SparkOpenstackError as exc:
                    failures[name] = exc.message
                    hints.update([exc.hint] if exc.hint else [])
                    err = exc
                except Exception as exc:  # noqa: BLE001 - reported per node, not swallowed
                    failures[name] = one_line(exc)
                    err = exc
                else:
                    err = None
                if on_done is not None:
                    on_done(node, results.get(name), err)
        except KeyboardInterrupt:
            for fut in futures:
                fut.cancel()
            raise
    if failures:
        # one advice shared by every failure (e.g. how to reset pinned host keys) is kept
        raise NodeErrors(failures, what=what, hint=hints.pop() if len(hints) == 1 else None)
    return results


def run_calls(calls: dict[str, Callable[[], R]], *, what: str,
              finish_on_interrupt: bool = False) -> dict[str, R]:
    """Run a few independent, different calls at once and return ``{label: result}``.

    One failure is raised as it is (its type and hint matter to the caller); several
    together as one ``NodeErrors`` of ``[label] message`` lines, in ``calls``'s order.
    On Ctrl-C, calls that create something are waited for when ``finish_on_interrupt``
    (each request is bounded by its own timeout), so what they made is known before a
    rollback reads it; read-only calls are abandoned at once.
    """
    if not calls:
        return {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(calls),
                                                 thread_name_prefix="call")
    try:
        futures = {label: pool.submit(fn) for label, fn in calls.items()}
        concurrent.futures.wait(futures.values())
    except BaseException:
        pool.shutdown(wait=finish_on_interrupt, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    failed = {label: fut.exception() for label, fut in futures.items()
              if fut.exception() is not None}
    if len(failed) == 1:
        raise next(iter(failed.values()))
    if failed:
        hints = {exc.hint for exc in failed.values()
                 if isinstance(exc, SparkOpenstackError) and exc.hint}
        together = NodeErrors({label: one_line(exc) for label, exc in failed.items()},
                              what=what, hint=hints.pop() if len(hints) == 1 else None)
        codes = {getattr(exc, "exit_code", 1) for exc in failed.values()}
        if len(codes) == 1:       # several bad inputs still exit as a bad input does
            together.exit_code = codes.pop()
        raise together
    return {label: fut.result() for label, fut in futures.items()}


class Background:
    """One call running beside the caller's work (a connection opening, a tool being
    installed): started at once, its result (or its exception) taken with ``result()``.
    The thread is a daemon: an abandoned call never keeps the process alive."""

    def __init__(self, fn: Callable[[], R], *, name: str):
        self._future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            if not self._future.set_running_or_notify_cancel():
                return
            try:
                self._future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to result()
                self._future.set_exception(exc)
        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None):
        """The call's result; its exception is raised here. ``timeout`` bounds the wait
        (``concurrent.futures.TimeoutError`` after it)."""
        return self._future.result(timeout=timeout)


def in_background(fn: Callable[[], R], *, name: str) -> Background:
    """Start ``fn`` in a thread of its own now; see ``Background``."""
    return Background(fn, name=name)
