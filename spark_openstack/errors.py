"""The project's one exception tree.

openstacksdk exceptions are translated into these at the provider boundary; only
``cli.main()`` maps them to exit codes (``exit_code`` below) and one clear message.
"""
from __future__ import annotations


class SparkOpenstackError(Exception):
    """Base of every error the tool reports to a user. Exit code 1 unless overridden."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(SparkOpenstackError):
    """Bad input from the user (a flag, a config value, a name). Exit code 2."""

    exit_code = 2


class ValidationError(UsageError):
    """Input that is well-formed but does not fit the cloud (missing image, short quota)."""


class NotFoundError(ValidationError):
    """A named cloud resource (image, flavor, keypair, network, cluster) does not exist."""


class AmbiguousError(ValidationError):
    """A name matches several cloud resources; the message lists the candidates."""


class QuotaError(ValidationError):
    """The project's quota cannot hold what was asked for; says which and by how much."""


class ClusterExistsError(ValidationError):
    """A cluster of that name already exists in the project."""


class ConfigError(UsageError):
    """The config file or the cloud selection (clouds.yaml, OS_*) is unusable."""


class CloudError(SparkOpenstackError):
    """The cloud refused or failed an operation (translated from openstacksdk)."""


class TimeoutError_(SparkOpenstackError):
    """Something did not reach the wanted state within its time limit."""


class SSHError(SparkOpenstackError):
    """SSH to a node failed (connect, auth or a command's exit status)."""


class HostKeyChanged(SSHError):
    """A node showed another host key than the one pinned for it: final, never retried."""


class NodeErrors(SparkOpenstackError):
    """Per-node failures collected by the executor, each reported as ``[node] message``."""

    def __init__(self, failures: dict[str, str], *, what: str = "node step",
                 hint: str | None = None):
        self.failures = dict(sorted(failures.items()))
        lines = "\n".join(f"[{node}] {msg}" for node, msg in self.failures.items())
        super().__init__(f"{what} failed on {len(self.failures)} node(s):\n{lines}",
                         hint=hint)


class DeployError(SparkOpenstackError):
    """A service could not be configured, started or reported unhealthy."""


class Interrupted(SparkOpenstackError):
    """The user pressed Ctrl-C; what this run made has been cleaned up. Exit code 130."""

    exit_code = 130


def one_line(exc: BaseException) -> str:
    """An error in one line for a report: the tool's own message, else ``Type: text``."""
    if isinstance(exc, SparkOpenstackError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def raise_after_undo(exc: BaseException, *, during: str, failed: str, said: str):
    """Raise ``exc`` again once an undo ran, saying what the undo did: Ctrl-C as
    ``Interrupted``, the tool's own errors with ``failed`` before and ``said`` after
    (type and hint kept), anything else as ``CloudError``. Never returns."""
    if isinstance(exc, KeyboardInterrupt):
        raise Interrupted(f"interrupted during {during}; {said}") from None
    if isinstance(exc, SparkOpenstackError):
        exc.message = f"{failed}{exc.message}\n{said}"
        raise exc
    raise CloudError(f"{failed}{one_line(exc)}\n{said}") from exc
