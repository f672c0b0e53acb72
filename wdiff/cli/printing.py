"""What the command line prints on stderr: notes, yellow warnings, and the ``Feedback`` (bars,
notes, warnings) it hands to library functions; silent with ``--quiet``."""

from __future__ import annotations

import typer
from rich.console import Console

from wdiff.feedback import SILENT, Feedback


def note(message: str) -> None:
    typer.echo(message, err=True)


def warn(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"wdiff: warning: {message}", style="yellow", markup=False
    )


def feedback(quiet: bool) -> Feedback:
    """Rich bars on a terminal (log lines elsewhere), notes and warnings; nothing when quiet."""
    from wdiff.progress import frame_and_step_bars, progress_bar

    if quiet:
        return SILENT
    return Feedback(bar=progress_bar, frame_bars=frame_and_step_bars, note=note, warn=warn)
