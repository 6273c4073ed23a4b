"""One bounded parallel executor for per-node work.

Per-node work is a plain function ``fn(node) -> result``. Every node runs (a failure on
one node does not cancel the others), every failure is collected, and they are raised
together as one ``NodeErrors`` whose message lists ``[node] message`` lines.
"""
from __future__ import annotations

import concurrent.futures
from typing import Callable, Iterable, TypeVar

from .errors import NodeErrors, SparkOpenstackError

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
                    failures[name] = f"{type(exc).__name__}: {exc}"
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
