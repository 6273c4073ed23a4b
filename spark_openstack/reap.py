"""``spark-openstack reap``: destroy every cluster of the project whose deadline passed.

Made for cron: it asks nothing, reads the deadlines from the cloud in one server list,
destroys the expired clusters a few at a time with the same ``destroy`` a user runs
(idempotent, so a reap interrupted half-way is finished by the next one), and leaves
every cluster without a deadline, or with one still ahead, alone.
"""
from __future__ import annotations

from datetime import datetime, timezone

from . import ledger
from .errors import NodeErrors
from .executor import run_per_node
from .expiry import cluster_deadline, expiry_dict
from .progress import Progress, ensure

#: Clusters destroyed at once (each destroy is itself parallel inside).
PARALLEL = 4


def expired_clusters(*, provider, now: datetime | None = None) -> tuple[list[dict], int]:
    """``([{cluster, expires_at, text}] of the expired ones, how many are not expired)``."""
    now = now or datetime.now(timezone.utc)
    expired, kept = [], 0
    for name, servers in sorted(provider.all_cluster_servers().items()):
        info = expiry_dict(cluster_deadline(servers), now=now)
        if info["expired"]:
            expired.append({"cluster": name, "expires_at": info["expires_at"],
                            "text": info["text"], "servers": len(servers)})
        else:
            kept += 1
    return expired, kept


def reap(*, provider, dry_run: bool = False, now: datetime | None = None,
         progress: Progress | None = None) -> dict:
    """Destroy the expired clusters (only list them with ``dry_run``). Result: ``expired``
    (what was found), ``destroyed`` (names), ``failed`` ({name: why}), ``kept`` (count)."""
    progress = ensure(progress)
    expired, kept = expired_clusters(provider=provider, now=now)
    result = {"dry_run": dry_run, "expired": expired, "destroyed": [], "failed": {},
              "kept": kept}
    if dry_run or not expired:
        return result

    why = {item["cluster"]: item["text"] for item in expired}

    def destroy(name: str) -> dict:
        progress.message(f"reap: destroying {name} ({why[name]})")
        return ledger.destroy(provider=provider, cluster=name)
    try:    # the executor reports a failure per cluster name, as "[name] why"
        done = run_per_node(destroy, list(why), what="reap", max_workers=PARALLEL)
        result["destroyed"] = sorted(done)
    except NodeErrors as exc:
        result["failed"] = dict(exc.failures)
        result["destroyed"] = sorted(i["cluster"] for i in expired
                                     if i["cluster"] not in exc.failures)
    return result
