"""Which private key reaches a cluster: the one given, or the one in ~/.ssh that matches
the cloud keypair, checked before anything is created or contacted."""
from __future__ import annotations

import os
from pathlib import Path

import paramiko

from . import errors
from .model import ClusterFacts

DEFAULT_IDENTITY_FILES = ("~/.ssh/id_ed25519", "~/.ssh/id_rsa", "~/.ssh/id_ecdsa")


def public_key_blob(identity_file: str | os.PathLike) -> tuple[str, str]:
    """``(key type, base64 blob)`` of a private key file (or its ``.pub`` when encrypted)."""
    path = Path(identity_file).expanduser()
    if not path.is_file():
        raise errors.ValidationError(f"identity file {path} (--identity-file) does not exist",
                                     hint="pass the private key of the keypair given with -k")
    try:
        key = paramiko.PKey.from_path(str(path))
        return key.get_name(), key.get_base64()
    except paramiko.PasswordRequiredException:
        pub = path.with_name(path.name + ".pub")
        if pub.is_file():
            parts = pub.read_text().split()
            if len(parts) >= 2:
                return parts[0], parts[1]
        raise errors.ValidationError(
            f"identity file {path} is passphrase-protected and has no {pub.name} next to it",
            hint=f"write its public key with `ssh-keygen -y -f {path} > {pub}`")
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise errors.ValidationError(f"identity file {path} is not a usable SSH private key: "
                                     f"{exc}", hint="pass the keypair's private key file")


def keypair_blob(keypair) -> tuple[str, str]:
    parts = (getattr(keypair, "public_key", "") or "").split()
    if len(parts) < 2:
        return "", ""
    return parts[0], parts[1]


def resolve_identity_file(*, identity_file: str | None, keypair) -> str:
    """The private key that matches the cloud keypair; searched in ~/.ssh when not given."""
    want = keypair_blob(keypair)
    if identity_file:
        have = public_key_blob(identity_file)
        if want[1] and have[1] != want[1]:
            raise errors.ValidationError(
                f"identity file {identity_file} does not match keypair {keypair.name!r}: "
                f"the file holds a {have[0]} key, the keypair "
                f"{want[0]} {want[1][:16]}... (fingerprint {keypair.fingerprint})",
                hint="pass -i/--identity-file with the private key of that keypair, or -k "
                     "with the keypair made from this key")
        return str(Path(identity_file).expanduser())
    for candidate in DEFAULT_IDENTITY_FILES:
        path = Path(candidate).expanduser()
        if path.is_file():
            try:
                if public_key_blob(path)[1] == want[1]:
                    return str(path)
            except errors.ValidationError:
                continue
    raise errors.UsageError(
        f"no --identity-file given and none of {', '.join(DEFAULT_IDENTITY_FILES)} matches "
        f"keypair {keypair.name!r}",
        hint="pass --identity-file PATH (the private key of that keypair)")



def cluster_identity_file(*, provider, facts: ClusterFacts, servers,
                          identity_file: str | None) -> str | None:
    """The private key for a cluster: the one given, else the one matching the master's
    keypair in ~/.ssh (``resolve_identity_file``); None lets ssh choose."""
    if identity_file:
        return str(Path(identity_file).expanduser())
    master = next((s for s in servers if s.id == facts.master.server_id), None)
    if master is None or not master.key_name:
        return None
    return resolve_identity_file(identity_file=None,
                                 keypair=provider.find_keypair(master.key_name))



__all__ = ["DEFAULT_IDENTITY_FILES", "public_key_blob", "keypair_blob",
           "resolve_identity_file", "cluster_identity_file"]
