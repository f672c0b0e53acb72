"""Progress on stderr, silent with ``--quiet``: rich bars (rate and time left) on a terminal;
elsewhere (a batch script's log) a plain line every ``WDIFF_PROGRESS_SECONDS`` (default 30)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _columns() -> tuple:
    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )


class LineProgress:
    """Progress for logs: ``description: done/total (pct%), elapsed, time left`` at most every
    ``interval`` seconds, and a last line at the end once any was written (short work stays
    silent)."""

    def __init__(self, description: str, total: int, interval: float | None = None, stream=None):
        if interval is None:
            interval = float(os.environ.get("WDIFF_PROGRESS_SECONDS", "30"))
        self.description, self.total, self.interval = description, total, interval
        self.stream = stream if stream is not None else sys.stderr
        self.done, self.began, self.lines = 0, time.monotonic(), 0
        self.last = self.began

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        finished = self.done >= self.total
        if now - self.last >= self.interval or (finished and self.lines):
            self.last = now
            self.lines += 1
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = now - self.began
        share = self.done / self.total if self.total else 1.0
        left = elapsed / share - elapsed if share else float("nan")
        return (
            f"{self.description}: {self.done}/{self.total} ({100 * share:.0f}%), "
            f"{_clock(elapsed)} elapsed, {_clock(left)} left"
        )


def _clock(seconds: float) -> str:
    if seconds != seconds:  # nan: nothing done yet
        return "-:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextlib.contextmanager
def progress_bar(
    description: str, total: int, quiet: bool = False
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``: a bar with count and time left on a terminal, else log lines."""
    console = Console(stderr=True)
    if quiet:
        yield lambda n=1: None
        return
    if not console.is_terminal:
        yield LineProgress(description, total).advance
        return
    with Progress(*_columns(), console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


@contextlib.contextmanager
def frame_and_step_bars(
    description: str, frames: int, steps: int, quiet: bool = False
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """Yield ``(advance_frames(n), steps_done(k))``: a frames bar with rate and time left, and
    below it the diffusion steps of the frame in progress (reset at each new frame)."""
    console = Console(stderr=True)
    if quiet:
        yield (lambda n=1: None), (lambda k: None)
        return
    if not console.is_terminal:
        yield LineProgress(description, frames).advance, (lambda k: None)
        return
    with Progress(*_columns(), console=console, transient=False) as bar:
        frame_task = bar.add_task(description, total=frames)
        step_task = bar.add_task("  steps", total=steps)

        def advance_frames(n: int = 1) -> None:
            bar.advance(frame_task, n)
            bar.reset(step_task, total=steps)

        def steps_done(k: int) -> None:
            bar.update(step_task, completed=k)

        yield advance_frames, steps_done
