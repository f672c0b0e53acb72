"""The run folder ``--out`` of ``wdiff finetune``: the checks before it is made, its lifetime,
the checkpoint (``checkpoint/``, with ``state.json``), the log (``log.jsonl``, one row per log
interval) and its plot (``loss.png``)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from wdiff.errors import WdiffError
from wdiff.training.settings import TrainSettings
from wdiff.training.writes import write_atomic, writing

if TYPE_CHECKING:
    from accelerate import Accelerator

CHECKPOINT = "checkpoint"
LOG = "log.jsonl"


def check_out_folder(out: Path) -> None:
    """Refuse an ``--out`` that is not a folder or that cannot be created or written."""
    if os.path.lexists(out) and not out.is_dir():
        kind = "is a file" if out.is_file() else "is not a folder"
        raise WdiffError(f"{out}: {kind}; choose a folder for --out")
    existing = out
    while not os.path.lexists(existing):
        existing = existing.parent
    if not existing.is_dir():
        raise WdiffError(f"{out}: {existing} is a file; choose a folder for --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "here" if existing == out else f"in {existing}"
        raise WdiffError(f"{out}: cannot write {where} (read-only); choose another --out")


def check_run_folder(out: Path, resume: bool, trained: bool) -> Path:
    """The checkpoint folder of run folder ``out``, after refusing what would lose work: a
    fresh run over a trained model (``trained``) or an interrupted run's checkpoint, or
    ``--resume`` without a checkpoint."""
    checkpoint = out / CHECKPOINT
    saved = (checkpoint / "state.json").is_file()
    if resume and not saved:
        raise WdiffError(f"{checkpoint}: no checkpoint to resume; drop --resume to start afresh")
    if not resume and trained:
        raise WdiffError(f"{out}: holds a trained model; pick another --out or add --resume")
    if not resume and saved:
        raise WdiffError(
            f"{out}: holds an interrupted run's checkpoint; add --resume to continue it or pick "
            "another --out"
        )
    return checkpoint


@contextlib.contextmanager
def run_folder(out: Path) -> Iterator[Path]:
    """Create the run folder ``out`` (and its missing parents) for the body; when the body
    fails before a checkpoint was saved, remove the folders this created."""
    created = None
    for folder in (out, *out.parents):
        if os.path.lexists(folder):
            break
        created = folder
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    state = out / CHECKPOINT / "state.json"
    try:
        yield out
    except BaseException as error:
        if not state.is_file():
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise
        if isinstance(error, WdiffError):
            step = json.loads(state.read_text())["step"]
            raise WdiffError(
                f"{error} (the checkpoint at step {step} is kept: add --resume to continue)"
            ) from error
        raise


def resume_checkpoint(accelerator: Accelerator, folder: Path) -> int:
    """Load the state :func:`save_checkpoint` saved in ``folder``; the step it was saved at."""
    accelerator.load_state(str(folder))
    return json.loads((folder / "state.json").read_text())["step"]


def save_checkpoint(
    accelerator: Accelerator, out: Path, step: int, settings: TrainSettings
) -> None:
    """Save the training state in ``out/checkpoint`` as a whole: written into a hidden sibling
    first and swapped in once complete, so a failed save (a full disk) keeps the previous
    checkpoint."""
    folder = out / CHECKPOINT
    staging = folder.with_name(f".{folder.name}.partial")
    old = folder.with_name(f".{folder.name}.old")
    try:
        with writing(folder):
            if accelerator.is_main_process:
                _remove(staging)
            accelerator.wait_for_everyone()
            accelerator.save_state(str(staging))
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                (staging / "state.json").write_text(json.dumps({"step": step} | asdict(settings)))
                _remove(old)
                if folder.exists():
                    os.replace(folder, old)
                os.replace(staging, folder)
                _remove(old)
    except BaseException:
        if accelerator.is_main_process:
            _remove(staging)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def trim_log(out: Path, start: int) -> None:
    """Keep the rows of ``out/log.jsonl`` up to step ``start`` (a resumed run logs the rest
    again; a fresh one, ``start`` 0, begins an empty log)."""
    log_path = out / LOG
    if not log_path.is_file():
        return
    rows = [line for line in log_path.read_text().splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line)["step"] <= start]
    if len(kept) != len(rows):
        with writing(log_path):
            log_path.write_text("".join(line + "\n" for line in kept))


def append_log(out: Path, row: dict) -> None:
    """Append ``row`` (``step``, ``loss``, ``lr``, ``seconds``) to ``out/log.jsonl``."""
    log_path = out / LOG
    with writing(log_path), log_path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


def plot_losses(out: Path) -> None:
    """``out/loss.png``: the loss curve (log scale) from ``out/log.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log_path = out / LOG
    if not log_path.is_file():
        return
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    axes.set_xlabel("step")
    axes.set_ylabel("EDM loss")
    axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    try:
        write_atomic(out / "loss.png", lambda path: figure.savefig(path, dpi=100))
    finally:
        plt.close(figure)
