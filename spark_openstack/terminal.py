"""How the tool talks to a terminal: live progress while a command works, and a result's
view (``views.View``) printed as a table and lines, or as JSON.

The CLI's only way to print a result: so every command prints the same way, and the
words live in ``views``.
"""
from __future__ import annotations

import json
import sys
import time

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .model import node_sort_key
from .progress import Progress
from .views import View

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def _cell(value) -> Text | str:
    if isinstance(value, tuple):
        text, style = value
        return Text(text, style=style)
    return value


def table_of(view: View) -> Table:
    from rich import box
    kwargs = {"title": view.title or None, "title_justify": "left"}
    if not view.header:
        kwargs["show_header"] = False
    elif view.wrap_column:
        kwargs["box"] = box.SIMPLE_HEAD
    table = Table(**kwargs)
    for i, column in enumerate(view.columns):
        if view.wrap_column:
            wraps = column == view.wrap_column
            table.add_column(column, no_wrap=not wraps, min_width=8 if wraps else None)
        else:
            table.add_column(column, style="bold" if not view.header and i == 0 else None)
    for row in view.rows:
        table.add_row(*(_cell(c) for c in row))
    return table


def emit(view: View, *, as_json: bool = False) -> int:
    """Print ``view`` (its data as JSON with ``as_json``); returns its exit code."""
    if as_json:
        stdout.print_json(json.dumps(view.to_dict()))
        return view.exit_code
    if view.columns:
        stdout.print(table_of(view))
    for line in view.lines:
        stdout.print(line, markup=False)      # "[ok]" is no markup tag
    for note in view.notes:
        stderr.print(note, markup=False)
    return view.exit_code


def print_prefixed(name: str, text: str, *, console: Console) -> None:
    """Every line of a node's output, as ``[name] line``."""
    for line in text.splitlines():
        console.print(f"[{name}] {line}", markup=False, highlight=False)


def show_node_output(name: str, result, *, exit_note: bool = False) -> None:
    """A node's stdout on stdout and stderr on stderr, prefixed; its exit code when not 0."""
    print_prefixed(name, result.stdout, console=stdout)
    print_prefixed(name, result.stderr, console=stderr)
    if exit_note and result.exited != 0:
        stderr.print(f"[{name}] exited {result.exited}", markup=False, highlight=False)


def write_output(data: bytes, *, stream=None) -> None:
    """A driver's bytes as they come, unchanged (never through rich)."""
    stream = stream or sys.stdout
    sys.stdout.flush()
    stream.buffer.write(data)
    stream.buffer.flush()


class RichProgress(Progress):
    """A live line per node plus phase lines; plain log lines when not on a terminal."""

    def __init__(self, console: Console = stderr, *, title: str = ""):
        self.console = console
        self.title = title
        self.nodes: dict[str, tuple[str, float]] = {}
        self.phase = ""
        self.t0 = time.monotonic()
        self.live: Live | None = None
        self.phase_times: dict[str, float] = {}

    def __enter__(self):
        self._ended = False
        return self

    def _start_live(self) -> None:
        """The live display starts with the first progress, not before: a question
        asked first (destroy's "are you sure?") must not share the line with it."""
        if self.live is None and not getattr(self, "_ended", True) \
                and self.console.is_terminal:
            self.live = Live(self._render(), console=self.console, refresh_per_second=8,
                             transient=False)
            self.live.__enter__()

    def __exit__(self, *exc):
        self.end_live(*exc)
        return False

    def end_live(self, *exc) -> None:
        """From here on plain lines (a driver's output is about to share the terminal)."""
        self._ended = True
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(*(exc or (None, None, None)))
            self.live = None

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.t0:6.1f}s"

    def _render(self):
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_column(justify="right", style="dim")
        head = f"{self.title}  " if self.title else ""
        table.add_row(Text(f"{head}{self.phase or 'starting'}", style="cyan"), "",
                      self._elapsed())
        for name in sorted(self.nodes, key=node_sort_key):
            status, since = self.nodes[name]
            style = "green" if status in ("ready", "active", "deleted") else (
                "red" if "error" in status.lower() else "")
            table.add_row(name, Text(status, style=style),
                          f"{time.monotonic() - since:5.1f}s")
        return table

    def _refresh(self):
        if self.live is not None:
            self.live.update(self._render())

    def phase_started(self, phase):
        self._start_live()
        self.phase = phase
        if self.live is None:
            self.console.print(f"[{self._elapsed()}] {phase} ...")
        self._refresh()

    def phase_done(self, phase, seconds):
        self._start_live()
        self.phase_times[phase] = seconds
        if self.live is None:
            self.console.print(f"[{self._elapsed()}] {phase} done in {seconds:.1f}s")
        self._refresh()

    def node_status(self, node, status):
        self._start_live()
        self.nodes[node] = (status, time.monotonic())
        if self.live is None:
            self.console.print(f"[{self._elapsed()}] {node}: {status}")
        self._refresh()

    def message(self, text):
        self._start_live()
        if self.live is not None:
            self.live.console.print(f"[yellow]{escape(text)}[/yellow]")
        else:
            self.console.print(text, markup=False)
