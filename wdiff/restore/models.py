"""The denoiser and the task a restore runs: ``--model`` resolved to a built-in model, a
``wdiff finetune`` run folder or model file, or a diffusers folder, recognised by its
``model_index.json`` ``_class_name``: SDXL (fine-tuned by ``wdiff finetune``, or SDXL
inpainting), SD 1.5/2 inpainting or the SD x4 upscaler."""

from __future__ import annotations

from pathlib import Path

import torch

from wdiff.config import RestoreSettings
from wdiff.errors import WdiffError


def load_denoiser(settings: RestoreSettings, device: torch.device):
    """The Denoiser ``settings.model`` names, for ``settings.task``, on ``device``."""
    from wdiff.models.builtin import BuiltinDenoiser, BuiltinNet, load_builtin, model_file

    name = settings.model
    if name in ("builtin", f"builtin:{settings.task}"):
        return load_builtin(settings.task, device)
    if name.startswith("builtin:"):
        raise WdiffError(f"--model {name}: for this task use builtin:{settings.task}")
    path = model_file(name)  # a `wdiff finetune` run folder: its model file
    if path.suffix == ".safetensors" and path.is_file():
        net, _ = BuiltinNet.load(path)
        if net.config.task != settings.task:
            raise WdiffError(f"--model {name}: trained for {net.config.task}, not {settings.task}")
        return BuiltinDenoiser(net, device)
    if not path.exists():
        raise WdiffError(f"--model {name}: no such file or folder; use builtin or a model file")
    if path.is_dir():
        return _load_folder(path, settings, device)
    raise WdiffError(
        f"--model {name}: not a model; use builtin, a `wdiff finetune` run folder or model "
        "file, or a diffusers folder"
    )


class LoadedDenoisers:
    """The last denoiser loaded, kept for the next input of a batch that loads the same one
    (#18): an SDXL folder takes seconds to load. A denoiser keeps nothing of a run (its only
    cache, the prompt embeddings, depends on the prompt alone; a conditioning draw comes from a
    generator made at each call), so a reused one gives a fresh one's bytes. One is kept at a
    time: the previous one is let go before another is loaded."""

    def __init__(self):
        self._key: tuple | None = None
        self._denoiser = None

    def get(self, settings: RestoreSettings, device: torch.device):
        """``load_denoiser(settings, device)``, or the one kept from the same arguments."""
        key = _load_key(settings, device)
        if key != self._key:
            self._key, self._denoiser = None, None
            self._denoiser = load_denoiser(settings, device)
            self._key = key
        return self._denoiser


def _load_key(settings: RestoreSettings, device: torch.device) -> tuple:
    """Every setting ``load_denoiser`` reads, and the device."""
    fields = ("model", "task", "scale", "dtype", "variant", "vae_tiling", "vae_slicing")
    fields += ("cpu_offload", "noise_level", "seed")
    return (*(getattr(settings, name) for name in fields), str(device))


def _load_folder(path: Path, settings: RestoreSettings, device: torch.device):
    """A diffusers folder run as its own pipeline runs it; other pipelines refused."""
    from wdiff.models.folder import (
        SD_INPAINT,
        SD_UPSCALE,
        SDXL_PIPELINES,
        SUPPORTED,
        FolderOptions,
        pipeline_class,
    )

    kind = pipeline_class(path)
    options = FolderOptions(
        settings.dtype,
        settings.vae_tiling,
        settings.vae_slicing,
        settings.cpu_offload,
        settings.variant,
    )
    tasks = {SD_INPAINT: "inpaint", SD_UPSCALE: "sr", SDXL_PIPELINES[1]: "inpaint"}
    wanted = tasks.get(kind, settings.task)
    if kind in SUPPORTED and wanted != settings.task:
        verb = "upscale" if wanted == "sr" else "inpaint"
        raise WdiffError(f"--model {settings.model}: a {kind} folder; use it with wdiff {verb}")
    if kind in SDXL_PIPELINES:
        return _load_sdxl(path, settings, device)
    if kind == SD_INPAINT:
        from wdiff.models.sd import SDInpaintDenoiser

        return SDInpaintDenoiser(path, device, options)
    if kind == SD_UPSCALE:
        from wdiff.models.sd import SDUpscaleDenoiser

        denoiser = SDUpscaleDenoiser(path, device, options, settings.noise_level, settings.seed)
        if settings.scale != denoiser.scale:
            raise WdiffError(
                f"--scale {settings.scale}: the SD upscaler {settings.model} upscales by "
                f"{denoiser.scale}; use --scale {denoiser.scale}"
            )
        return denoiser
    raise WdiffError(
        f"--model {settings.model}: a {kind} folder is not supported; wdiff runs "
        f"{', '.join(SUPPORTED)} folders (StableDiffusionXLPipeline fine-tuned by wdiff finetune)"
    )


def _load_sdxl(path: Path, settings: RestoreSettings, device: torch.device):
    from wdiff.models.folder import finetune_mark
    from wdiff.models.sdxl import SDXLDenoiser, SDXLOptions

    mark = finetune_mark(path)
    if mark and mark.get("task") != settings.task:
        verb = "upscale" if mark.get("task") == "sr" else "inpaint"
        raise WdiffError(
            f"--model {settings.model}: fine-tuned by wdiff finetune for {mark.get('task')}; "
            f"use it with wdiff {verb}"
        )

    options = SDXLOptions(
        settings.dtype,
        settings.vae_tiling,
        settings.vae_slicing,
        settings.cpu_offload,
        settings.variant,
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
