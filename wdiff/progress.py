"""rich progress bars on stderr (rate and time left), silent with ``--quiet``."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def progress_bar(
    description: str, total: int, quiet: bool = False
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; a bar with count and time left on a terminal, unless ``quiet``."""
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield lambda n=1: None
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
    if quiet or not console.is_terminal:
        yield (lambda n=1: None), (lambda k: None)
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
