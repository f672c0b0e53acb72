"""What one training step draws from its generator: the SR scale or the inpainting masks, the
condition of the built-in models, and the noise (GP or white). Crops are ``(B, 3, S, S)`` in
[-1, 1]; every draw comes from the step's generator, so a resumed run draws the same."""

from __future__ import annotations

import torch

SR_SCALES = (2, 4, 8)


def sr_scale(gen: torch.Generator) -> int:
    """One SR scale from ``SR_SCALES`` for a batch."""
    return SR_SCALES[int(torch.randint(len(SR_SCALES), (1,), generator=gen))]


def training_example(task: str, crops: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The condition for a batch of crops ``(B, 3, S, S)``: SR with a random scale per batch
    (bicubic-upsampled area downsampling, ``(B, 3, S, S)``) or inpainting with random masks
    (the masked crops and the mask as -1/1, ``(B, 4, S, S)``)."""
    from wdiff.datasets import random_masks
    from wdiff.tasks import Inpainting, SuperResolution

    if task == "sr":
        sr = SuperResolution(sr_scale(gen))
        return sr.upsample(sr.degrade(crops))
    masks = random_masks(crops.shape[0], crops.shape[-1], gen)
    return torch.cat([Inpainting.degrade(crops, masks), masks.float() * 2 - 1], dim=1)


def training_noise(
    kind: str, shape: tuple[int, int, int, int], gen: torch.Generator
) -> torch.Tensor:
    """Noise of ``shape`` (B, C, h, w): exact GP samples (``kind`` "gp") or white."""
    from wdiff.noise.exact import gp_noise

    if kind == "gp":
        return gp_noise(shape, gen)
    return torch.randn(shape, generator=gen)
