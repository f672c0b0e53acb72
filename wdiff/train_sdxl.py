"""``wdiff finetune --arch /path/to/sdxl``: fine-tune SDXL's UNet for SR or inpainting with GP
or white noise in latent space, conditioned by channel concatenation (``conv_in`` widened with
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
import time
from dataclasses import asdict
from pathlib import Path

import torch


def finetune_sdxl(settings, report=None) -> dict:
    """Like :func:`wdiff.train.finetune` (which calls this for a folder ``--arch``): every
    check before ``out`` is created, failed writes as WdiffError."""
    from accelerate import Accelerator
    from diffusers import StableDiffusionXLPipeline

    from wdiff.datasets import batches, random_masks, training_images
    from wdiff.diffusion.schedules import training_sigmas
    from wdiff.models.sdxl import SDXLDenoiser, SDXLOptions, check_folder, is_sdxl_folder
    from wdiff.tasks import Inpainting, SuperResolution
    from wdiff.train import (
        SR_SCALES,
        check_out_folder,
        check_run_folder,
        check_settings,
        end_of_step,
        plot_losses,
        resume_checkpoint,
        run_folder,
        run_summary,
        training_noise,
        trim_log,
        write_atomic,
    )

    check_settings(settings)
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
    sigmas = training_sigmas(denoiser.scheduler)
    with run_folder(out):
        log_path = out / "log.jsonl"
        if accelerator.is_main_process:
            trim_log(log_path, start)
        began, losses, seen = time.time(), [], 0
        rank_seed = settings.seed * 1000 + accelerator.process_index
        crops_of = batches(images, settings.crop, settings.batch_size, rank_seed, start)
        for step, crops, gen in crops_of:
            if step >= settings.steps:
                break
            crops = crops.to(accelerator.device)
            if settings.task == "sr":
                scale = SR_SCALES[int(torch.randint(len(SR_SCALES), (1,), generator=gen))]
                task = SuperResolution(scale)
                cond = denoiser.condition(task, task.degrade(crops))
            else:
                masks = random_masks(crops.shape[0], crops.shape[-1], gen)
                cond = denoiser.condition(Inpainting(), crops, masks.to(accelerator.device))
            clean = denoiser.encode(crops)
            noise = training_noise(settings.noise, clean.shape, gen).to(accelerator.device)
            timestep = torch.randint(len(sigmas), (clean.shape[0],), generator=gen)
            sigma = sigmas[timestep].to(accelerator.device)
            scale_ = sigma.view(-1, 1, 1, 1)
            with accelerator.autocast():
                denoised = denoiser(clean + scale_ * noise, sigma, cond)
            loss = (((denoised.float() - clean) / scale_) ** 2).mean()
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            seen += 1
            if end_of_step(accelerator, settings, step + 1, losses, settings.lr, began, report):
                losses = []
        accelerator.wait_for_everyone()
        summary = {}
        if accelerator.is_main_process:
            tuned = accelerator.unwrap_model(unet).eval().requires_grad_(False)
            pipeline = StableDiffusionXLPipeline.from_pretrained(
                base, unet=tuned.to(torch.float32), local_files_only=True
            )
            save_pipeline(pipeline, out)
            summary = run_summary(accelerator, settings, began, seen, len(images))
            text = json.dumps({"settings": asdict(settings), "summary": summary}, indent=2)
            write_atomic(
                out / "wdiff_finetune.json", lambda path: Path(path).write_text(text + "\n")
            )
            plot_losses(log_path, out / "loss.png")
    return summary


def save_pipeline(pipeline, out: Path) -> None:
    """``pipeline.save_pretrained`` into a hidden folder inside ``out``, then its parts moved into
    ``out`` with ``model_index.json`` last: a failed save (a full disk) raises WdiffError and
    leaves no half-written model that would pass for a trained one."""
    from wdiff.train import writing

    staging = out / ".model.partial"
    try:
        with writing(out):
            shutil.rmtree(staging, ignore_errors=True)
            pipeline.save_pretrained(staging)
            index = out / "model_index.json"
            index.unlink(missing_ok=True)
            for part in sorted(staging.iterdir(), key=lambda path: path.name == index.name):
                target = out / part.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(part, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
