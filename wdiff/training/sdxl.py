"""Training SDXL (``--arch /path/to/sdxl``): its UNet fine-tuned for SR or inpainting with GP or
white noise in latent space, conditioned by channel concatenation (``conv_in`` widened with
zero weights; see ``models.sdxl``). The paper's settings: AdamW, lr from ``--lr`` (5e-6 in the
paper), betas 0.9/0.999, weight decay 1e-2, eps 1e-8, gradient clipping 1.0, bf16 on GPUs.

Per step: latents ``z0`` of the crops, a training timestep drawn uniformly, its sigma,
``x = z0 + sigma n`` and the epsilon loss ``|(D(x) - z0) / sigma|^2``. The result is a complete
diffusers SDXL folder at ``--out`` (the tuned UNet beside the base model's other parts), which
``--model`` takes.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from wdiff.models.folder import FINETUNE_MARK
from wdiff.training.examples import sr_scale, training_noise
from wdiff.training.folder import (
    check_out_folder,
    check_run_folder,
    plot_losses,
    resume_checkpoint,
    run_folder,
)
from wdiff.training.loop import Report, run_summary, train_steps
from wdiff.training.settings import TrainSettings
from wdiff.training.writes import write_atomic, writing

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline


def finetune_sdxl(settings: TrainSettings, report: Report | None = None) -> dict:
    """Fine-tune the SDXL folder ``settings.arch`` (settings already checked); every check
    before ``out`` is created, failed writes as WdiffError."""
    from accelerate import Accelerator
    from diffusers import StableDiffusionXLPipeline

    from wdiff.datasets import random_masks, training_images
    from wdiff.models.sdxl import SDXLDenoiser, SDXLOptions, check_folder, is_sdxl_folder
    from wdiff.tasks import Inpainting, SuperResolution

    base, out = Path(settings.arch), Path(settings.out)
    check_folder(base)
    check_out_folder(out)
    checkpoint = check_run_folder(out, settings.resume, is_sdxl_folder(out))
    images = training_images(settings.data, settings.crop)
    accelerator = Accelerator(
        cpu=settings.cpu, mixed_precision="bf16" if torch.cuda.is_available() else "no"
    )
    denoiser = SDXLDenoiser(base, settings.task, accelerator.device, SDXLOptions(dtype="fp32"))
    torch.manual_seed(settings.seed)
    unet = denoiser.unet.requires_grad_(True).train()
    optimizer = torch.optim.AdamW(
        unet.parameters(), lr=settings.lr, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8
    )
    unet, optimizer = accelerator.prepare(unet, optimizer)
    denoiser.unet = unet
    start = resume_checkpoint(accelerator, checkpoint) if settings.resume else 0
    sigmas = denoiser.schedule.training_sigmas()

    def loss_of(crops: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        crops = crops.to(accelerator.device)
        if settings.task == "sr":
            task = SuperResolution(sr_scale(gen))
            cond = denoiser.condition(task, task.degrade(crops))
        else:
            masks = random_masks(crops.shape[0], crops.shape[-1], gen)
            cond = denoiser.condition(Inpainting(), crops, masks.to(accelerator.device))
        clean = denoiser.encode(crops)
        noise = training_noise(settings.noise, clean.shape, gen).to(accelerator.device)
        timestep = torch.randint(len(sigmas), (clean.shape[0],), generator=gen)
        sigma = sigmas[timestep].to(accelerator.device)
        scale = sigma.view(-1, 1, 1, 1)
        with accelerator.autocast():
            denoised = denoiser(clean + scale * noise, sigma, cond)
        return (((denoised.float() - clean) / scale) ** 2).mean()

    with run_folder(out):
        began, seen = train_steps(
            accelerator, settings, images, start, unet, optimizer, loss_of, report
        )
        summary = {}
        if accelerator.is_main_process:
            tuned = accelerator.unwrap_model(unet).eval().requires_grad_(False)
            pipeline = StableDiffusionXLPipeline.from_pretrained(
                base, unet=tuned.to(torch.float32), local_files_only=True
            )
            mark = {"task": settings.task, "noise": settings.noise}
            save_pipeline(pipeline, out, mark)
            summary = run_summary(accelerator, settings, began, seen, len(images))
            text = json.dumps({"settings": asdict(settings), "summary": summary}, indent=2)
            write_atomic(
                out / "wdiff_finetune.json", lambda path: Path(path).write_text(text + "\n")
            )
            plot_losses(out)
    return summary


def save_pipeline(pipeline: DiffusionPipeline, out: Path, mark: dict | None = None) -> None:
    """``pipeline.save_pretrained`` into a hidden folder inside ``out``, then its parts moved into
    ``out`` with ``model_index.json`` last: a failed save (a full disk) raises WdiffError and
    leaves no half-written model that would pass for a trained one. ``mark`` goes into
    ``model_index.json`` (``models.folder.FINETUNE_MARK``): wdiff's fine-tunes told apart."""
    staging = out / ".model.partial"
    try:
        with writing(out):
            shutil.rmtree(staging, ignore_errors=True)
            pipeline.save_pretrained(staging)
            if mark is not None:
                staged = staging / "model_index.json"
                staged.write_text(
                    json.dumps(json.loads(staged.read_text()) | {FINETUNE_MARK: mark})
                )
            index = out / "model_index.json"
            index.unlink(missing_ok=True)
            for part in sorted(staging.iterdir(), key=lambda path: path.name == index.name):
                target = out / part.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(part, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
