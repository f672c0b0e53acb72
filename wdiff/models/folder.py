"""What every diffusers pipeline folder wdiff runs shares: the layout read from
``model_index.json``, the completeness check, loading its parts (weights variant detected:
``*.fp16.safetensors`` alone loads with ``variant="fp16"``), its VAE's latent convention and
its scheduler (``models.scheduling``), and the Denoiser body around its UNet.

Latents: ``encode`` gives ``(z - latents_mean) * scaling_factor / latents_std`` of the VAE's
posterior mean (``z * scaling_factor`` without mean/std in the config) and ``decode`` inverts
it, as diffusers' SDXL pipelines do; the inpainting pipelines' masked-image latents are
``z * scaling_factor`` (``image_latents``), as theirs are.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from wdiff.errors import WdiffError
from wdiff.models.scheduling import Schedule, load_scheduler

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
SDXL_PIPELINES = ("StableDiffusionXLPipeline", "StableDiffusionXLInpaintPipeline")
SD_INPAINT = "StableDiffusionInpaintPipeline"
SD_UPSCALE = "StableDiffusionUpscalePipeline"
SUPPORTED = (*SDXL_PIPELINES, SD_INPAINT, SD_UPSCALE)
FINETUNE_MARK = "_wdiff_finetune"  # model_index.json key of wdiff's own fine-tunes
_SDXL_PARTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")
COMPONENTS = {name: _SDXL_PARTS for name in SDXL_PIPELINES} | {
    SD_INPAINT: ("unet", "vae", "text_encoder", "tokenizer"),
    SD_UPSCALE: ("unet", "vae", "text_encoder", "tokenizer", "low_res_scheduler"),
}


@dataclass
class FolderOptions:
    """Memory and precision switches (diffusers helpers)."""

    dtype: str = "bf16"
    vae_tiling: bool = False
    vae_slicing: bool = False
    cpu_offload: bool = False
    variant: str = "auto"  # weights variant (fp16, ...); auto: fp16 where only fp16 is there


def is_pipeline_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "model_index.json").is_file()


def pipeline_class(path: Path) -> str:
    """``_class_name`` of ``path/model_index.json``; one line when there is none."""
    index = Path(path) / "model_index.json"
    if not index.is_file():
        raise WdiffError(
            f"{path}: no model_index.json; give a diffusers folder saved by save_pretrained"
        )
    try:
        return str(json.loads(index.read_text()).get("_class_name"))
    except (OSError, ValueError) as error:
        raise WdiffError(f"{index}: not readable as JSON ({error})") from error


def finetune_mark(path: Path) -> dict | None:
    """What ``wdiff finetune`` wrote into the ``model_index.json`` of a folder it saved
    (``{"task": ..., "noise": ...}``; diffusers ignores keys beginning with ``_``), else None."""
    try:
        mark = json.loads((Path(path) / "model_index.json").read_text()).get(FINETUNE_MARK)
    except (OSError, ValueError):
        return None
    return mark if isinstance(mark, dict) else None


def weights_variant(folder: Path, wanted: str = "auto") -> str | None:
    """The variant to load from ``folder``: ``wanted`` (``--variant``) where its
    ``*.WANTED.*`` weights are there, else the plain ones (as diffusers' pipelines fall back
    part by part; the UNet must have it: ``check_variant``); for "auto", None when it holds
    plain weights, "fp16" when only ``*.fp16.*`` ones."""
    files = [*folder.glob("*.safetensors"), *folder.glob("*.bin")]
    if wanted != "auto":
        if any(f".{wanted}." in path.name for path in files):
            return wanted
        wanted = "auto"
    if any(".fp16" not in path.name for path in files):
        return None
    if files:
        return "fp16"
    raise WdiffError(f"{folder}: no weights (*.safetensors)")


def check_folder(path: Path, kind: str = "StableDiffusionXLPipeline") -> None:
    """Raise naming every missing piece of a ``kind`` pipeline folder."""
    path = Path(path)
    if not path.is_dir():
        raise WdiffError(f"{path}: no such folder; give a local diffusers folder")
    missing = [] if (path / "model_index.json").is_file() else ["model_index.json"]
    for name in ("scheduler", *COMPONENTS[kind]):
        folder = path / name
        if name.endswith("scheduler"):
            if not (folder / "scheduler_config.json").is_file():
                missing.append(f"{name}/scheduler_config.json")
        elif name.startswith("tokenizer"):
            fast = (folder / "tokenizer.json").is_file()
            if not fast and not all((folder / f).is_file() for f in ("vocab.json", "merges.txt")):
                missing.append(f"{name}/tokenizer.json (or vocab.json and merges.txt)")
        elif not (folder / "config.json").is_file():
            missing.append(f"{name}/config.json")
        elif not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
            missing.append(f"{name}/ weights (*.safetensors)")
    if missing:
        label = "SDXL" if kind in SDXL_PIPELINES else kind
        raise WdiffError(
            f"{path}: incomplete {label} folder, missing {', '.join(missing)}; "
            f"save a complete one with {kind}.save_pretrained"
        )


def quiet_loaders() -> None:
    """Loading progress bars and notices would break wdiff's own progress display."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for logging in (diffusers_logging, transformers_logging):
        logging.set_verbosity_error()
        logging.disable_progress_bar()


def check_variant(unet_folder: Path, wanted: str) -> None:
    """``--variant``: the UNet, the weights that matter, must have it."""
    files = [*unet_folder.glob("*.safetensors"), *unet_folder.glob("*.bin")]
    if wanted != "auto" and not any(f".{wanted}." in path.name for path in files):
        raise WdiffError(
            f"{unet_folder}: no {wanted} weights (*.{wanted}.safetensors); drop --variant "
            f"{wanted} to load what is there"
        )


def load_part(cls, folder: Path, variant: str = "auto", **kwargs):
    """``cls.from_pretrained(folder)`` from local files, in weights variant ``variant``
    (``weights_variant``)."""
    quiet_loaders()
    try:
        return cls.from_pretrained(
            folder, local_files_only=True, variant=weights_variant(folder, variant), **kwargs
        )
    except (OSError, ValueError) as error:
        raise WdiffError(f"{folder}: could not load it ({error})") from error


class VaeLatents:
    """A folder's VAE (fp32) and its latent convention."""

    def __init__(self, vae):
        self.vae = vae
        config = vae.config
        self.factor = config.scaling_factor
        self.scale = 2 ** (len(config.block_out_channels) - 1)  # pixels per latent cell
        self.mean = self.std = None
        if getattr(config, "latents_mean", None) and getattr(config, "latents_std", None):
            self.mean = torch.tensor(config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1)
            self.std = torch.tensor(config.latents_std, dtype=torch.float32).view(1, -1, 1, 1)

    def _posterior(self, frames: torch.Tensor) -> torch.Tensor:
        device = next(self.vae.parameters()).device
        with torch.no_grad():
            return self.vae.encode(frames.to(device, torch.float32)).latent_dist.mean

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[-1, 1] pixels ``(N, 3, H, W)`` -> latents ``(N, C, H / scale, W / scale)``."""
        z = self._posterior(frames)
        if self.mean is None:
            return z * self.factor
        return (z - self.mean.to(z.device)) * self.factor / self.std.to(z.device)

    def image_latents(self, frames: torch.Tensor) -> torch.Tensor:
        """``z * scaling_factor``: the inpainting pipelines' masked-image latents."""
        return self._posterior(frames) * self.factor

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents -> [-1, 1] pixels (differentiable)."""
        x = x.to(next(self.vae.parameters()).device, torch.float32)
        if self.mean is None:
            z = x / self.factor
        else:
            z = x * self.std.to(x.device) / self.factor + self.mean.to(x.device)
        return self.vae.decode(z).sample.clamp(-1, 1)


class FolderDenoiser:
    """The Denoiser body of a diffusers folder: the UNet in ``options.dtype`` on ``device``,
    the VAE in fp32, the folder's scheduler. Subclasses load their text encoders and define
    ``condition``, ``_extra_inputs`` (channels after x) and ``_unet_kwargs``."""

    space = "latent"
    takes_prompt = True

    def __init__(self, folder: Path, kind: str, device, options: FolderOptions | None):
        from diffusers import AutoencoderKL, UNet2DConditionModel

        folder = Path(folder)
        check_folder(folder, kind)
        options = options or FolderOptions()
        if options.dtype not in DTYPES:
            raise WdiffError(f"--dtype {options.dtype}: use one of {', '.join(DTYPES)}")
        self.folder, self.kind, self.options = folder, kind, options
        self.device = torch.device(device)
        self.dtype = DTYPES[options.dtype]
        if self.device.type == "cpu" and self.dtype == torch.float16:
            self.dtype = torch.float32  # fp16 convolutions are not implemented on every CPU
        variant = options.variant
        check_variant(folder / "unet", variant)
        self.unet = load_part(
            UNet2DConditionModel, folder / "unet", variant, torch_dtype=self.dtype
        )
        vae = load_part(AutoencoderKL, folder / "vae", variant, torch_dtype=torch.float32)
        self.schedule = Schedule(load_scheduler(folder / "scheduler"))
        self.scheduler = self.schedule.scheduler
        # --cpu-offload: the text encoders (used once per prompt) and the VAE (once per frame)
        # wait on the CPU and visit the GPU only while they work
        self.offload = options.cpu_offload and self.device.type == "cuda"
        self.parked = torch.device("cpu") if self.offload else self.device
        self.vae = vae.to(self.parked, torch.float32).requires_grad_(False).eval()
        if options.vae_tiling:
            self.vae.enable_tiling()
        if options.vae_slicing:
            self.vae.enable_slicing()
        self.latents = VaeLatents(self.vae)
        self.scale = self.latents.scale
        self.channels = self.vae.config.latent_channels
        self.sigma_data = self.schedule.sigma_data
        self._prompts: dict[str | None, tuple] = {}

    def _ready(self) -> None:
        """Move the UNet to its device and dtype, frozen (after any change to it)."""
        self.unet.to(self.device, self.dtype).requires_grad_(False).eval()

    def _encoder(self, encoder):
        return encoder.to(self.parked, self.dtype).requires_grad_(False).eval()

    # ----------------------------------------------------------------- the Denoiser protocol
    def sigmas(self, steps: int) -> torch.Tensor:
        return self.schedule.sigmas(steps)

    def init_noise_sigma(self, sigmas: torch.Tensor) -> torch.Tensor:
        """The first x's standard deviation, as the folder's pipeline starts it."""
        return self.schedule.init_noise_sigma(sigmas)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        with self._visiting(self.vae):
            return self.latents.encode(frames)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        with self._visiting(self.vae):
            return self.latents.decode(x)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: dict) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32).reshape(-1)
        scale = sigma.view(-1, 1, 1, 1)
        batch = x.shape[0]
        scaled = self.schedule.model_input(x, scale)
        inputs = torch.cat([scaled, *self._extra_inputs(cond, batch)], dim=1)
        output = self.unet(
            inputs.to(self.dtype),
            self.timestep(sigma).expand(batch),
            **self._unet_kwargs(cond, batch),
        ).sample.float()
        return self.schedule.x0(x, scale, output)

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The UNet's timestep at each ``sigma``, on the UNet's device."""
        return self.schedule.timestep(sigma).to(self.device)

    # ---------------------------------------------------------------------------- helpers
    def _extra_inputs(self, cond: dict, batch: int) -> list[torch.Tensor]:
        return [cond["latents"].expand(batch, -1, -1, -1)]

    def _unet_kwargs(self, cond: dict, batch: int) -> dict:
        return {"encoder_hidden_states": cond["text"].expand(batch, -1, -1)}

    @contextlib.contextmanager
    def _visiting(self, module):
        if not self.offload:
            yield
            return
        module.to(self.device)
        try:
            yield
        finally:
            module.to("cpu")
            torch.cuda.empty_cache()


class LatentEncoder:
    """Only the VAE of a diffusers folder (fp32), for measuring errors in its latent space."""

    def __init__(self, folder: Path, device: torch.device | str = "cpu"):
        from diffusers import AutoencoderKL

        folder = Path(folder)
        if not (folder / "vae" / "config.json").is_file():
            raise WdiffError(f"{folder}: no vae/config.json; give a diffusers folder")
        self.vae = load_part(AutoencoderKL, folder / "vae")
        self.vae.to(device, torch.float32).requires_grad_(False).eval()
        self.device = torch.device(device)
        self.latents = VaeLatents(self.vae)
        self.scale = self.latents.scale

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[-1, 1] pixels ``(N, 3, H, W)`` -> latents ``(N, C, H / scale, W / scale)``."""
        return self.latents.encode(frames)
