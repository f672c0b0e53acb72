"""Stable Diffusion 1.5/2 layouts with one text encoder, run as their diffusers pipelines run
them (``models.folder`` loads them; the folder's scheduler decides noise levels, timesteps and
preconditioning):

- ``StableDiffusionInpaintPipeline`` (9-channel UNet): the UNet input is ``[x, mask,
  masked-image latents]``, the hole mask resized to the latent grid by nearest interpolation
  (1 = hole), the frame's hole set to 0 in [-1, 1] before the VAE (``z * scaling_factor``).
- ``StableDiffusionUpscalePipeline`` (the x4 upscaler: 7 channels = 4 latents + 3 low-res
  pixels): the latent grid is the low-res grid (its VAE has 4 pixels per cell); the low-res
  frame in [-1, 1], noised by the folder's ``low_res_scheduler`` at ``noise_level`` (the
  UNet's ``class_labels``), is appended to the scaled latents. The noise on the low-res frame
  is drawn from ``noise_seed`` alone: the same draw every frame, as a still would get.

Prompts: the text encoder's last hidden state (``(1, 77, D)``), no classifier-free guidance.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from wdiff.errors import WdiffError
from wdiff.models.folder import SD_INPAINT, SD_UPSCALE, FolderDenoiser, FolderOptions, load_part
from wdiff.models.scheduling import load_scheduler
from wdiff.tasks import Inpainting, SuperResolution

LATENTS = 4


class SDDenoiser(FolderDenoiser):
    """An SD folder with one CLIP text encoder; ``max_tile`` is the UNet's native size."""

    def __init__(self, folder: Path, kind: str, device, options: FolderOptions | None):
        from transformers import CLIPTextModel, CLIPTokenizer

        folder = Path(folder)
        super().__init__(folder, kind, device, options)
        self.text_encoder = self._encoder(
            load_part(
                CLIPTextModel, folder / "text_encoder", self.options.variant, torch_dtype=self.dtype
            )
        )
        self.tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
        self.max_tile = int(self.unet.config.sample_size)
        self._ready()

    def _check_channels(self, expected: int, what: str) -> None:
        channels = self.unet.config.in_channels
        if channels != expected:
            raise WdiffError(
                f"{self.folder}: a {self.kind} UNet takes {expected} input channels ({what}), "
                f"this one {channels}"
            )

    def prompt_embeddings(self, prompt: str | None) -> torch.Tensor:
        """``(1, 77, D)``: the text encoder's last hidden state, as the pipeline's."""
        if prompt not in self._prompts:
            tokens = self.tokenizer(
                prompt or "",
                padding="max_length",
                max_length=self.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            )
            mask = None
            if getattr(self.text_encoder.config, "use_attention_mask", False):
                mask = tokens.attention_mask.to(self.device)
            with torch.no_grad(), self._visiting(self.text_encoder):
                states = self.text_encoder(tokens.input_ids.to(self.device), attention_mask=mask)
            self._prompts[prompt] = states[0].to(self.dtype)
        return self._prompts[prompt]


class SDInpaintDenoiser(SDDenoiser):
    """``StableDiffusionInpaintPipeline``'s 9-channel UNet, for inpainting."""

    def __init__(self, folder: Path, device="cpu", options: FolderOptions | None = None):
        super().__init__(folder, SD_INPAINT, device, options)
        self._check_channels(2 * LATENTS + 1, "latents, mask, masked-image latents")

    def condition(self, task, frame: torch.Tensor, mask=None, prompt: str | None = None) -> dict:
        """The hole on the latent grid and the masked frame's latents, the prompt's states."""
        if not isinstance(task, Inpainting):
            raise WdiffError(f"{self.folder}: an SD inpainting model inpaints; it cannot upscale")
        frame = frame.to(self.device, torch.float32)
        with self._visiting(self.vae):
            latents = self.latents.image_latents(task.degrade(frame, mask.to(self.device)))
        small = F.interpolate(mask.to(self.device).float(), size=latents.shape[-2:])
        return {
            "latents": torch.cat([small, latents], dim=1),
            "text": self.prompt_embeddings(prompt),
        }


class SDUpscaleDenoiser(SDDenoiser):
    """``StableDiffusionUpscalePipeline``'s 7-channel UNet: x``scale`` (4) super-resolution."""

    def __init__(
        self,
        folder: Path,
        device="cpu",
        options: FolderOptions | None = None,
        noise_level: int = 20,
        noise_seed: int = 0,
    ):
        super().__init__(folder, SD_UPSCALE, device, options)
        self._check_channels(LATENTS + 3, "latents, low-res pixels")
        self.low_res_scheduler = load_scheduler(Path(folder) / "low_res_scheduler")
        index = json.loads((Path(folder) / "model_index.json").read_text())
        most = int(index.get("max_noise_level", 350))
        if not 0 <= noise_level <= most:
            raise WdiffError(f"--noise-level {noise_level}: this upscaler takes 0 to {most}")
        self.noise_level, self.noise_seed = noise_level, noise_seed

    def condition(self, task, frame: torch.Tensor, mask=None, prompt: str | None = None) -> dict:
        """The low-res frame ``(1, 3, h, w)`` in [-1, 1], noised at ``noise_level``."""
        if not isinstance(task, SuperResolution) or task.scale != self.scale:
            raise WdiffError(f"{self.folder}: the SD upscaler upscales by {self.scale}: --scale 4")
        frame = frame.to(self.device, torch.float32)
        generator = torch.Generator(self.device).manual_seed(self.noise_seed)
        noise = torch.randn(frame.shape, generator=generator, device=self.device)
        level = torch.tensor([self.noise_level], dtype=torch.long, device=self.device)
        noisy = self.low_res_scheduler.add_noise(frame, noise, level)
        return {"image": noisy, "level": level, "text": self.prompt_embeddings(prompt)}

    def _extra_inputs(self, cond: dict, batch: int) -> list[torch.Tensor]:
        return [cond["image"].expand(batch, -1, -1, -1)]

    def _unet_kwargs(self, cond: dict, batch: int) -> dict:
        return super()._unet_kwargs(cond, batch) | {"class_labels": cond["level"].expand(batch)}
