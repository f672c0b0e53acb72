"""SDXL behind the Denoiser protocol: a diffusers SDXL folder on local disk (never downloaded).

The UNet runs in fp16 or bf16, the VAE in fp32. Prompts go through both text encoders (the
penultimate hidden states side by side, the second encoder's pooled projection as
``text_embeds``). The model works in the VAE's latent space; the observation is given by
channel concatenation: SR adds the latents of the bicubic-upsampled low-res frame (4 channels),
inpainting, in the order of diffusers' ``StableDiffusionXLInpaintPipeline`` and of every public
9-channel checkpoint, the hole mask on the latent grid (nearest resize, 1 = hole) and then the
latents of the frame with its hole set to 0 in [-1, 1] (5 channels). ``conv_in`` is widened
for them with zero weights (so the widened model starts as the original), and a checkpoint
already widened for the task is taken as it is.

Sigma-parametrisation: ``x = z0 + sigma n`` in latents; the UNet sees ``x / sqrt(sigma^2 + 1)``
and the timestep interpolated at ``sigma`` on its training schedule; eps and v predictions are
converted to ``z0``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wdiff.errors import WdiffError
from wdiff.tasks import Inpainting, SuperResolution

COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")
LATENT_CHANNELS = 4
COND_CHANNELS = {"sr": 4, "inpaint": 5}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass
class SDXLOptions:
    """Memory and precision switches (diffusers helpers)."""

    dtype: str = "bf16"
    vae_tiling: bool = False
    vae_slicing: bool = False
    cpu_offload: bool = False


def is_sdxl_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "model_index.json").is_file()


def check_folder(path: Path) -> None:
    """Raise naming every missing piece of a diffusers SDXL folder."""
    path = Path(path)
    if not path.is_dir():
        raise WdiffError(f"{path}: no such folder; give a local diffusers SDXL folder")
    missing = [] if (path / "model_index.json").is_file() else ["model_index.json"]
    if not (path / "scheduler" / "scheduler_config.json").is_file():
        missing.append("scheduler/scheduler_config.json")
    for name in COMPONENTS:
        folder = path / name
        if name.startswith("tokenizer"):
            fast = (folder / "tokenizer.json").is_file()
            if not fast and not all((folder / f).is_file() for f in ("vocab.json", "merges.txt")):
                missing.append(f"{name}/tokenizer.json (or vocab.json and merges.txt)")
            continue
        if not (folder / "config.json").is_file():
            missing.append(f"{name}/config.json")
        if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
            missing.append(f"{name}/ weights (*.safetensors)")
    if missing:
        raise WdiffError(
            f"{path}: incomplete SDXL folder, missing {', '.join(missing)}; "
            "save a complete one with StableDiffusionXLPipeline.save_pretrained"
        )


def widen_conv_in(unet, task: str) -> bool:
    """Give ``unet.conv_in`` the task's condition channels, new weights zero; True if widened,
    False if the checkpoint already has them."""
    expected = LATENT_CHANNELS + COND_CHANNELS[task]
    conv = unet.conv_in
    if conv.in_channels == expected:
        return False
    if conv.in_channels != LATENT_CHANNELS:
        raise WdiffError(
            f"the UNet takes {conv.in_channels} input channels; an SDXL {task} model takes "
            f"{LATENT_CHANNELS} (to be widened) or {expected}"
        )
    wider = torch.nn.Conv2d(
        expected,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        wider.weight.zero_()
        wider.weight[:, :LATENT_CHANNELS] = conv.weight
        wider.bias.copy_(conv.bias)
    unet.conv_in = wider
    unet.register_to_config(in_channels=expected)
    return True


def _quiet_loaders() -> None:
    """Loading progress bars and notices would break wdiff's own progress display."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for logging in (diffusers_logging, transformers_logging):
        logging.set_verbosity_error()
        logging.disable_progress_bar()


class SDXLDenoiser:
    """A (fine-tuned) SDXL for one task, in latent space."""

    space = "latent"
    channels = LATENT_CHANNELS
    sigma_data = 1.0
    max_tile = 128  # latent cells: SDXL's native 1024 px; --tile auto tiles larger frames
    takes_prompt = True

    def __init__(
        self,
        folder: Path,
        task: str,
        device: torch.device | str = "cpu",
        options: SDXLOptions | None = None,
    ):
        from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

        folder = Path(folder)
        check_folder(folder)
        options = options or SDXLOptions()
        if options.dtype not in DTYPES:
            raise WdiffError(f"--dtype {options.dtype}: use one of {', '.join(DTYPES)}")
        self.folder, self.task, self.options = folder, task, options
        self.device = torch.device(device)
        self.dtype = DTYPES[options.dtype]
        if self.device.type == "cpu" and self.dtype == torch.float16:
            self.dtype = torch.float32  # fp16 convolutions are not implemented on every CPU
        _quiet_loaders()
        local = {"local_files_only": True}
        typed = local | {"torch_dtype": self.dtype}
        try:
            self.unet = UNet2DConditionModel.from_pretrained(folder / "unet", **typed)
            self.vae = AutoencoderKL.from_pretrained(
                folder / "vae", **local, torch_dtype=torch.float32
            )
            self.text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", **typed)
            self.text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(
                folder / "text_encoder_2", **typed
            )
            self.tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", **local)
            self.tokenizer_2 = CLIPTokenizer.from_pretrained(folder / "tokenizer_2", **local)
            self.scheduler = EulerDiscreteScheduler.from_pretrained(folder / "scheduler", **local)
        except (OSError, ValueError) as error:
            raise WdiffError(f"{folder}: could not load the SDXL folder ({error})") from error
        self.widened = widen_conv_in(self.unet, task)
        # --cpu-offload: the text encoders (used once per prompt) and the VAE (once per frame)
        # wait on the CPU and visit the GPU only while they work
        self.offload = options.cpu_offload and self.device.type == "cuda"
        parked = torch.device("cpu") if self.offload else self.device
        self.unet.to(self.device, self.dtype).requires_grad_(False).eval()
        self.vae.to(parked, torch.float32).requires_grad_(False).eval()
        for encoder in (self.text_encoder, self.text_encoder_2):
            encoder.to(parked, self.dtype).requires_grad_(False).eval()
        if options.vae_tiling:
            self.vae.enable_tiling()
        if options.vae_slicing:
            self.vae.enable_slicing()
        self.scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.prediction = self.scheduler.config.prediction_type
        alphas = self.scheduler.alphas_cumprod.to(torch.float64)
        self._log_sigmas = ((1 - alphas) / alphas).sqrt().log().numpy()
        self._prompts: dict[str | None, tuple[torch.Tensor, torch.Tensor]] = {}

    # ----------------------------------------------------------------- the Denoiser protocol
    def sigmas(self, steps: int) -> torch.Tensor:
        from wdiff.diffusion.schedules import discrete_sigmas

        return discrete_sigmas(self.scheduler, steps)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self._visiting(self.vae):
            posterior = self.vae.encode(frames.to(self.device, torch.float32)).latent_dist
        return posterior.mean * self.vae.config.scaling_factor

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        with self._visiting(self.vae):
            latents = x.to(self.device, torch.float32) / self.vae.config.scaling_factor
            image = self.vae.decode(latents).sample
        return image.clamp(-1, 1)

    def condition(self, task, frame: torch.Tensor, mask=None, prompt: str | None = None) -> dict:
        """Latents of the observation, prompt embeddings and SDXL's size conditioning."""
        frame = frame.to(self.device, torch.float32)
        if isinstance(task, SuperResolution):
            if self.task != "sr":
                raise WdiffError("this SDXL model was loaded for inpainting, not upscaling")
            image = task.upsample(frame)
            cond = self.encode(image)
        elif isinstance(task, Inpainting):
            if self.task != "inpaint":
                raise WdiffError("this SDXL model was loaded for upscaling, not inpainting")
            image = frame
            hole = mask.to(self.device).float()
            latents = self.encode(task.degrade(frame, mask.to(self.device)))
            small = F.interpolate(hole, size=latents.shape[-2:], mode="nearest")
            cond = torch.cat([small, latents], dim=1)
        else:
            raise WdiffError(f"SDXL models know the tasks sr and inpaint, not {task!r}")
        text, pooled = self.prompt_embeddings(prompt)
        height, width = image.shape[-2:]
        sizes = torch.tensor([[height, width, 0, 0, height, width]], device=self.device)
        return {"latents": cond, "text": text, "pooled": pooled, "time_ids": sizes}

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: dict) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32).reshape(-1)
        scale = sigma.view(-1, 1, 1, 1)
        scaled = x / (scale**2 + 1).sqrt()
        batch = x.shape[0]
        inputs = torch.cat([scaled, cond["latents"].expand(batch, -1, -1, -1)], dim=1)
        output = self.unet(
            inputs.to(self.dtype),
            self.timestep(sigma).expand(batch),
            encoder_hidden_states=cond["text"].expand(batch, -1, -1),
            added_cond_kwargs={
                "text_embeds": cond["pooled"].expand(batch, -1),
                "time_ids": cond["time_ids"].to(self.dtype).expand(batch, -1),
            },
        ).sample.float()
        if self.prediction == "epsilon":
            return x - scale * output
        if self.prediction == "v_prediction":
            return x / (scale**2 + 1) - scale / (scale**2 + 1).sqrt() * output
        raise WdiffError(f"{self.folder}: prediction type {self.prediction} is not supported")

    # ---------------------------------------------------------------------------- helpers
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

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The (fractional) training timestep at ``sigma``, by log-sigma interpolation."""
        log_sigma = sigma.detach().float().clamp_min(1e-8).log().cpu().numpy()
        steps = np.interp(log_sigma, self._log_sigmas, np.arange(len(self._log_sigmas)))
        return torch.as_tensor(steps, dtype=torch.float32, device=self.device)

    def prompt_embeddings(self, prompt: str | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(1, 77, D1 + D2)`` penultimate hidden states of both encoders, ``(1, P)`` pooled."""
        if prompt not in self._prompts:
            states = []
            pooled = None
            for tokenizer, encoder in (
                (self.tokenizer, self.text_encoder),
                (self.tokenizer_2, self.text_encoder_2),
            ):
                ids = tokenizer(
                    prompt or "",
                    padding="max_length",
                    max_length=min(
                        tokenizer.model_max_length, encoder.config.max_position_embeddings
                    ),
                    truncation=True,
                    return_tensors="pt",
                ).input_ids.to(self.device)
                with torch.no_grad(), self._visiting(encoder):
                    out = encoder(ids, output_hidden_states=True)
                states.append(out.hidden_states[-2])
                pooled = out[0]  # the second encoder's text_embeds
            self._prompts[prompt] = (
                torch.cat(states, dim=-1).to(self.dtype),
                pooled.to(self.dtype),
            )
        return self._prompts[prompt]


class LatentEncoder:
    """Only the VAE of an SDXL folder (fp32), for measuring errors in its latent space."""

    def __init__(self, folder: Path, device: torch.device | str = "cpu"):
        from diffusers import AutoencoderKL

        folder = Path(folder)
        if not (folder / "vae" / "config.json").is_file():
            raise WdiffError(f"{folder}: no vae/config.json; give a diffusers SDXL folder")
        _quiet_loaders()
        self.vae = AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True)
        self.vae.to(device, torch.float32).requires_grad_(False).eval()
        self.device = torch.device(device)
        self.scale = 2 ** (len(self.vae.config.block_out_channels) - 1)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[-1, 1] pixels ``(N, 3, H, W)`` -> latents ``(N, 4, H / scale, W / scale)``."""
        with torch.no_grad():
            posterior = self.vae.encode(frames.to(self.device, torch.float32)).latent_dist
        return posterior.mean * self.vae.config.scaling_factor
