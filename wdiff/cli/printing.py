"""What the command line prints, and where: ``outputs`` and ``document`` on stdout (for
scripts: the paths of the files a command wrote, one per line, the main output first; or one
JSON object); notes, yellow warnings and the ``Feedback`` (bars, notes, warnings) it hands to
library functions on stderr, silent with ``--quiet``. Errors are ``entry``'s."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import typer

from wdiff.feedback import SILENT, Feedback


def outputs(paths: Iterable[Path | str]) -> None:
    """The files a command wrote, one path per line on stdout, even with ``--quiet``."""
    for path in paths:
        typer.echo(str(path))


def document(fields: dict) -> None:
    """One JSON object on one line of stdout (``--json``)."""
    typer.echo(json.dumps(fields))


def note(message: str) -> None:
    typer.echo(message, err=True)


def warn(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"wdiff: warning: {message}", style="yellow", markup=False
    )


def feedback(quiet: bool) -> Feedback:
    """Rich bars on a terminal (log lines elsewhere), notes and warnings; nothing when quiet."""
    from wdiff.progress import frame_and_step_bars, progress_bar

    if quiet:
        return SILENT
    return Feedback(bar=progress_bar, frame_bars=frame_and_step_bars, note=note, warn=warn)
