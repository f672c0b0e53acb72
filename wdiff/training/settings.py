"""``TrainSettings``: every option of ``wdiff finetune``, and the checks no run can pass without."""

from __future__ import annotations

import math
from dataclasses import dataclass

from wdiff.errors import WdiffError

AUGMENTS = ("flip", "dihedral")  # the crops' symmetries: wdiff.datasets.random_crops


@dataclass
class TrainSettings:
    task: str = "sr"
    noise: str = "gp"
    data: str = "samples"
    out: str = "runs/sr-gp"
    arch: str = "builtin-small"
    steps: int = 4000
    batch_size: int = 16
    crop: int = 64
    augment: str = "flip"  # flip (horizontal flips) or dihedral (flips and quarter turns)
    lr: float = 5e-4
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    resume: bool = False
    cpu: bool = False
    init: str | None = None  # built-in models: start from this model's weights
    # built-in models: the share of training items at sigma_max (None: the model config's, 0)
    top_share: float | None = None
    # built-in models: train a first-level network, initialised from this model, beside --init's
    first_level: str | None = None
    # built-in models: the first-level network's layers per block (more than it has: deepened)
    first_layers: int | None = None


def check_settings(settings: TrainSettings) -> None:
    """Refuse settings no run can use (the CLI checks most of them already; this covers
    callers of :func:`wdiff.training.finetune` from Python)."""
    if settings.task not in ("sr", "inpaint"):
        raise WdiffError(f"--task {settings.task}: use sr or inpaint")
    if settings.noise not in ("gp", "white"):
        raise WdiffError(f"--noise {settings.noise}: use gp or white")
    if not (math.isfinite(settings.lr) and settings.lr > 0):
        raise WdiffError(f"--lr {settings.lr}: use a learning rate above 0 (such as 5e-4)")
    for option, value in (
        ("--train-steps", settings.steps),
        ("--batch-size", settings.batch_size),
        ("--checkpoint-every", settings.checkpoint_every),
    ):
        if value < 1:
            raise WdiffError(f"{option} {value}: use 1 or more")
    if settings.augment not in AUGMENTS:
        raise WdiffError(f"--augment {settings.augment}: use {' or '.join(AUGMENTS)}")
    if settings.top_share is not None and not 0 <= settings.top_share <= 1:
        raise WdiffError(f"--top-share {settings.top_share}: use 0 to 1")
    if settings.first_level is not None and settings.init is None:
        raise WdiffError(
            f"--first-level {settings.first_level}: give --init too, the model that keeps "
            "every other noise level"
        )
    if settings.first_level is not None and settings.top_share is not None:
        raise WdiffError(
            f"--top-share {settings.top_share}: a --first-level run trains at sigma_max alone; "
            "leave --top-share out"
        )
    if settings.first_layers is not None and settings.first_level is None:
        raise WdiffError(
            f"--first-layers {settings.first_layers}: give --first-level too, the network to deepen"
        )
    if settings.first_layers is not None and not 1 <= settings.first_layers <= 8:
        raise WdiffError(f"--first-layers {settings.first_layers}: use 1 to 8")
    if settings.crop < 16 or settings.crop % 8:
        raise WdiffError(f"--crop {settings.crop}: use a multiple of 8, 16 or more")
