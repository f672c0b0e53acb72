"""The fixed inputs of one restore: what model, what grid, which noise levels."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wdiff.config import RestoreSettings
from wdiff.errors import WdiffError


@dataclass
class RestorePlan:
    """``shape`` is the working tensor of one frame ``(1, C, h, w)`` on the model's grid of
    ``denoiser.scale`` pixels per cell; ``size`` the output frame (width, height) in pixels;
    ``factor`` the output pixels per input pixel (``--scale`` for SR, 1 for inpainting)."""

    settings: RestoreSettings
    denoiser: object
    device: torch.device
    factor: int
    size: tuple[int, int]
    shape: tuple[int, int, int, int]
    sigmas: torch.Tensor

    @classmethod
    def build(cls, settings: RestoreSettings, info, denoiser, device: torch.device) -> RestorePlan:
        """The plan for input ``info`` (a ``video.VideoInfo``); refuses an output size that is
        not a whole number of the model's cells."""
        factor = settings.scale if settings.task == "sr" else 1
        width, height = info.width * factor, info.height * factor
        scale = denoiser.scale
        if width % scale or height % scale:
            raise WdiffError(f"output size {width}x{height} must be a multiple of {scale}")
        shape = (1, denoiser.channels, height // scale, width // scale)
        sigmas = denoiser.sigmas(settings.steps)
        return cls(settings, denoiser, device, factor, (width, height), shape, sigmas)

    @property
    def grid(self) -> tuple[int, int]:
        """The working grid (h, w) in cells."""
        return self.shape[-2:]
