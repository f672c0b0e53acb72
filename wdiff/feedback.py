"""How long library work talks to its caller: progress bars, notes and warnings, as callbacks.

Library functions print nothing themselves; they take a ``Feedback``, silent by default. The
command line passes one that draws rich bars and prints lines on stderr, or ``SILENT`` with
``--quiet``. Messages are one line without a prefix (the caller adds ``wdiff: warning:``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

Advance = Callable[[int], None]  # advance(n): n more units (frames, pairs, steps) done
StepsDone = Callable[[int], None]  # steps_done(k): k diffusion steps of the current frame done


@contextlib.contextmanager
def no_bar(description: str, total: int) -> Iterator[Advance]:
    """A progress bar that shows nothing."""
    yield lambda n=1: None


@contextlib.contextmanager
def no_frame_bars(description: str, frames: int, steps: int) -> Iterator[tuple[Advance, StepsDone]]:
    """Frame and step bars that show nothing."""
    yield (lambda n=1: None), (lambda k: None)


def _ignore(message: str) -> None:
    pass


@dataclass(frozen=True)
class Feedback:
    """``bar(description, total)`` yields ``advance(n)``; ``frame_bars(description, frames,
    steps)`` yields ``(advance_frames(n), steps_done(k))``; ``note`` and ``warn`` take a line."""

    bar: Callable[[str, int], AbstractContextManager[Advance]] = no_bar
    frame_bars: Callable[[str, int, int], AbstractContextManager[tuple[Advance, StepsDone]]] = (
        no_frame_bars
    )
    note: Callable[[str], None] = _ignore
    warn: Callable[[str], None] = _ignore


SILENT = Feedback()
