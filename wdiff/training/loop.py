"""The training loop every architecture shares: batches keyed by (seed, step) from the resumed
step on, one optimiser step per batch with gradients clipped to norm 1, the log row at each log
interval and the checkpoint at each checkpoint interval."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from wdiff.training.folder import append_log, save_checkpoint, trim_log
from wdiff.training.settings import TrainSettings

if TYPE_CHECKING:
    import numpy as np
    from accelerate import Accelerator

Report = Callable[[int, int, float], object]  # report(step, total, loss)
LossOf = Callable[[torch.Tensor, torch.Generator], torch.Tensor]  # loss_of(crops, gen)


def train_steps(
    accelerator: Accelerator,
    settings: TrainSettings,
    images: list[np.ndarray],
    start: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_of: LossOf,
    report: Report | None = None,
    warm_up: int = 0,
    after_step: Callable[[], object] | None = None,
) -> tuple[float, int]:
    """Steps ``start`` to ``settings.steps`` on prepared ``model`` and ``optimizer``;
    ``loss_of(crops, gen)`` is one batch's loss (crops ``(B, 3, S, S)`` on the CPU, ``gen`` the
    step's generator), ``after_step()`` runs after each optimiser step (e.g. the EMA).
    ``warm_up`` > 0: the learning rate ramps up linearly over that many steps; 0 leaves the
    optimiser's own. Returns the start time and the steps run."""
    from wdiff.datasets import batches

    out = Path(settings.out)
    if accelerator.is_main_process:
        trim_log(out, start)
    began, losses, seen = time.time(), [], 0
    rank_seed = settings.seed * 1000 + accelerator.process_index
    crops_of = batches(
        images, settings.crop, settings.batch_size, rank_seed, start, settings.augment
    )
    for step, crops, gen in crops_of:
        if step >= settings.steps:
            break
        loss = loss_of(crops, gen)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        lr = settings.lr
        if warm_up:
            lr = settings.lr * min(1.0, (step + 1) / warm_up)
            for group in optimizer.param_groups:
                group["lr"] = lr
        optimizer.step()
        optimizer.zero_grad()
        if after_step is not None:
            after_step()
        losses.append(float(loss.detach()))
        seen += 1
        if _end_of_step(accelerator, settings, step + 1, losses, lr, began, report):
            losses = []
    accelerator.wait_for_everyone()
    return began, seen


def _end_of_step(
    accelerator: Accelerator,
    settings: TrainSettings,
    done: int,
    losses: list[float],
    lr: float,
    began: float,
    report: Report | None,
) -> bool:
    """After optimiser step ``done``: at log intervals append the mean of ``losses`` to
    ``OUT/log.jsonl`` and call ``report`` (returns True: the caller starts a new window); at
    checkpoint intervals save ``OUT/checkpoint``."""
    logged = False
    if (done % settings.log_every == 0 or done == settings.steps) and (accelerator.is_main_process):
        row = {"step": done, "loss": sum(losses) / len(losses), "lr": lr}
        row["seconds"] = round(time.time() - began, 1)
        append_log(Path(settings.out), row)
        if report:
            report(done, settings.steps, row["loss"])
        logged = True
    if done % settings.checkpoint_every == 0 or done == settings.steps:
        save_checkpoint(accelerator, Path(settings.out), done, settings)
    return logged


def run_summary(
    accelerator: Accelerator, settings: TrainSettings, began: float, steps_run: int, images: int
) -> dict:
    """What ``finetune`` returns and saves beside the model: steps, time, device, data size."""
    return {
        "steps": settings.steps,
        "seconds_this_run": round(time.time() - began, 1),
        "steps_this_run": steps_run,
        "device": str(accelerator.device),
        "processes": accelerator.num_processes,
        "images": images,
    }
