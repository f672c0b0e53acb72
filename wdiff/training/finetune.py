"""``wdiff finetune``: conditional training of a denoiser with GP or white noise, under
Accelerate so the same code runs on one CPU or under ``accelerate launch`` on many GPUs; the
architecture (a built-in pixel model or a local SDXL folder) picks how."""

from __future__ import annotations

from pathlib import Path

from wdiff.errors import WdiffError
from wdiff.training.builtin import finetune_builtin
from wdiff.training.loop import Report
from wdiff.training.sdxl import finetune_sdxl
from wdiff.training.settings import TrainSettings, check_settings


def finetune(settings: TrainSettings, report: Report | None = None) -> dict:
    """Train and write the model, ``out/log.jsonl``, ``out/loss.png`` and checkpoints under
    ``out/checkpoint``; the run's summary. ``report(step, total, loss)`` is called at every
    log interval.

    Everything that can be checked (the options, ``--out``, the run folder, the data) is
    checked before ``out`` is created; a run that fails before its first checkpoint removes the
    folders it created."""
    from wdiff.models.builtin import ARCHITECTURES

    check_settings(settings)
    if settings.init and settings.arch not in ARCHITECTURES:
        raise WdiffError(f"--init {settings.init}: built-in models only; not with --arch SDXL")
    if settings.arch in ARCHITECTURES:
        return finetune_builtin(settings, report)
    if Path(settings.arch).is_dir():
        return finetune_sdxl(settings, report)
    raise WdiffError(
        f"--arch {settings.arch}: use one of {', '.join(ARCHITECTURES)} or a local diffusers "
        "SDXL folder"
    )
