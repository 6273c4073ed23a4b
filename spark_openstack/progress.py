"""Progress reporting seam between the library and a terminal.

Library functions take ``progress=None`` or a ``Progress``; they call the methods below and
never print. ``cli.py`` passes a rich-backed implementation (``terminal.RichProgress``); tests and
scripts can pass nothing (``Progress()`` is a silent no-op) or ``RecordingProgress``.
"""
from __future__ import annotations

import threading
import time


class Progress:
    """Silent progress sink; subclass and override what you want to show."""

    def phase_started(self, phase: str) -> None:
        """A named phase (validate, boot, network, ssh, deploy ...) began."""

    def phase_done(self, phase: str, seconds: float) -> None:
        """A phase finished after ``seconds``."""

    def node_status(self, node: str, status: str) -> None:
        """One node's current state in a word or short phrase (BUILD, ACTIVE, ssh ok)."""

    def message(self, text: str) -> None:
        """A line worth telling the user (a warning, what cleanup is doing)."""


def ensure(progress: Progress | None) -> Progress:
    return progress if progress is not None else Progress()


class RecordingProgress(Progress):
    """Keeps every event in memory (for tests and the benchmark)."""

    def __init__(self):
        self.events: list[tuple] = []
        self.phases: dict[str, float] = {}
        self.nodes: dict[str, str] = {}
        self._lock = threading.Lock()

    def phase_started(self, phase):
        with self._lock:
            self.events.append(("phase_started", phase, time.monotonic()))

    def phase_done(self, phase, seconds):
        with self._lock:
            self.phases[phase] = seconds
            self.events.append(("phase_done", phase, seconds))

    def node_status(self, node, status):
        with self._lock:
            self.nodes[node] = status
            self.events.append(("node", node, status))

    def message(self, text):
        with self._lock:
            self.events.append(("message", text))


class PhaseTimer:
    """``with PhaseTimer(progress, "boot", timings):`` records the phase's duration."""

    def __init__(self, progress: Progress, phase: str, timings: dict[str, float]):
        self.progress, self.phase, self.timings = progress, phase, timings

    def __enter__(self):
        self.start = time.monotonic()
        self.progress.phase_started(self.phase)
        return self

    def __exit__(self, exc_type, exc, tb):
        seconds = time.monotonic() - self.start
        self.timings[self.phase] = seconds
        if exc_type is None:
            self.progress.phase_done(self.phase, seconds)
        return False
