"""The denoiser and the task a restore runs: ``--model`` resolved to a built-in model, a
``wdiff finetune`` run folder or model file, or a diffusers SDXL folder."""

from __future__ import annotations

from pathlib import Path

import torch

from wdiff.config import RestoreSettings
from wdiff.errors import WdiffError


def load_denoiser(settings: RestoreSettings, device: torch.device):
    """The Denoiser ``settings.model`` names, for ``settings.task``, on ``device``."""
    from wdiff.models.builtin import BuiltinDenoiser, BuiltinNet, load_builtin

    name = settings.model
    if name in ("builtin", f"builtin:{settings.task}"):
        return load_builtin(settings.task, device)
    if name.startswith("builtin:"):
        raise WdiffError(f"--model {name}: for this task use builtin:{settings.task}")
    path = Path(name)
    if path.is_dir() and (path / "model.safetensors").is_file():
        path = path / "model.safetensors"  # a `wdiff finetune` run folder
    if path.suffix == ".safetensors" and path.is_file():
        net, _ = BuiltinNet.load(path)
        if net.config.task != settings.task:
            raise WdiffError(f"--model {name}: trained for {net.config.task}, not {settings.task}")
        return BuiltinDenoiser(net, device)
    if not path.exists():
        raise WdiffError(f"--model {name}: no such file or folder; use builtin or a model file")
    if path.is_dir():
        return _load_sdxl(path, settings, device)
    raise WdiffError(
        f"--model {name}: not a model; use builtin, a `wdiff finetune` run folder or model "
        "file, or a diffusers SDXL folder"
    )


def _load_sdxl(path: Path, settings: RestoreSettings, device: torch.device):
    from wdiff.models.sdxl import SDXLDenoiser, SDXLOptions

    options = SDXLOptions(
        settings.dtype, settings.vae_tiling, settings.vae_slicing, settings.cpu_offload
    )
    denoiser = SDXLDenoiser(path, settings.task, device, options)
    if denoiser.widened:  # zero weights for the observation: it would be ignored
        kind = "upscaling" if settings.task == "sr" else "inpainting"
        raise WdiffError(
            f"--model {settings.model}: this SDXL is not fine-tuned for {kind} (its UNet takes "
            f"no observation); run `wdiff finetune --task {settings.task} --arch "
            f"{settings.model}` and give its --out folder"
            + (", or an SDXL inpainting checkpoint" if settings.task == "inpaint" else "")
        )
    return denoiser


def make_task(settings: RestoreSettings):
    """``tasks.SuperResolution`` at ``settings.scale`` or ``tasks.Inpainting``."""
    from wdiff.tasks import Inpainting, SuperResolution

    return SuperResolution(settings.scale) if settings.task == "sr" else Inpainting()
