"""SDXL behind the Denoiser protocol: a diffusers SDXL folder on local disk (never downloaded).

The UNet runs in fp16 or bf16, the VAE in fp32 (``models.folder``); the folder's own scheduler
decides the noise levels and preconditioning (``models.scheduling``). Prompts go through both
text encoders (the penultimate hidden states side by side, the second encoder's pooled
projection as ``text_embeds``). The model works in the VAE's latent space; the observation is
given by channel concatenation: SR adds the latents of the bicubic-upsampled low-res frame (4
channels), inpainting, in the order of diffusers' ``StableDiffusionXLInpaintPipeline`` and of
every public 9-channel checkpoint, the hole mask on the latent grid (nearest resize, 1 = hole)
and then the latents of the frame with its hole set to 0 in [-1, 1] (5 channels). ``conv_in`` is
widened for them with zero weights (so the widened model starts as the original), and a
checkpoint already widened for the task is taken as it is.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from wdiff.errors import WdiffError
from wdiff.models.folder import FolderDenoiser, FolderOptions, check_folder, load_part
from wdiff.models.folder import LatentEncoder as LatentEncoder
from wdiff.models.folder import is_pipeline_folder as is_sdxl_folder
from wdiff.tasks import Inpainting, SuperResolution

__all__ = ["SDXLDenoiser", "SDXLOptions", "LatentEncoder", "check_folder", "is_sdxl_folder"]

LATENT_CHANNELS = 4
COND_CHANNELS = {"sr": 4, "inpaint": 5}
SDXLOptions = FolderOptions


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


class SDXLDenoiser(FolderDenoiser):
    """A (fine-tuned) SDXL for one task, in latent space."""

    max_tile = 128  # latent cells: SDXL's native 1024 px; --tile auto tiles larger frames

    def __init__(
        self,
        folder: Path,
        task: str,
        device: torch.device | str = "cpu",
        options: SDXLOptions | None = None,
    ):
        from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

        folder = Path(folder)
        super().__init__(folder, "StableDiffusionXLPipeline", device, options)
        self.task = task
        typed = {"torch_dtype": self.dtype}
        self.text_encoder = self._encoder(
            load_part(CLIPTextModel, folder / "text_encoder", self.options.variant, **typed)
        )
        self.text_encoder_2 = self._encoder(
            load_part(
                CLIPTextModelWithProjection,
                folder / "text_encoder_2",
                self.options.variant,
                **typed,
            )
        )
        self.tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
        self.tokenizer_2 = CLIPTokenizer.from_pretrained(
            folder / "tokenizer_2", local_files_only=True
        )
        self.widened = widen_conv_in(self.unet, task)
        self._ready()
        self.prediction = self.schedule.prediction

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
            with self._visiting(self.vae):
                latents = self.latents.image_latents(task.degrade(frame, mask.to(self.device)))
            small = F.interpolate(hole, size=latents.shape[-2:], mode="nearest")
            cond = torch.cat([small, latents], dim=1)
        else:
            raise WdiffError(f"SDXL models know the tasks sr and inpaint, not {task!r}")
        text, pooled = self.prompt_embeddings(prompt)
        height, width = image.shape[-2:]
        sizes = torch.tensor([[height, width, 0, 0, height, width]], device=self.device)
        return {"latents": cond, "text": text, "pooled": pooled, "time_ids": sizes}

    def _unet_kwargs(self, cond: dict, batch: int) -> dict:
        return super()._unet_kwargs(cond, batch) | {
            "added_cond_kwargs": {
                "text_embeds": cond["pooled"].expand(batch, -1),
                "time_ids": cond["time_ids"].to(self.dtype).expand(batch, -1),
            }
        }

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
