"""SSH keys for the tests: ``keygen`` makes a passphrase-less pair on disk."""
from __future__ import annotations

import subprocess
from pathlib import Path


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """A passphrase-less key pair at ``path`` (and ``path``.pub); returns ``path``."""
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return path
