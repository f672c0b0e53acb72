"""Temporal-consistency and restoration metrics on tensors (per item of a batch).

Frames are float ``(B, 3, H, W)`` RGB in [0, 1] (Lai et al. 2018's convention); flows are in
pixels ``(B, 2, H, W)`` as ``(dx, dy)``; validity masks bool ``(B, 1, H, W)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from wdiff.flow.ops import warp_bilinear

STATIC_MOTION = 0.5  # pixels: a cell moving less than this between frames counts as static
PSNR_CAP = 100.0  # dB, for frames identical to their reference (JSON has no infinity)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weight = mask.expand_as(values).double()
    return (values.double() * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1)


def warping_error(
    later: torch.Tensor, earlier: torch.Tensor, flow_forward: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Mean squared difference between ``earlier`` and ``later`` warped back by the forward flow
    (earlier -> later), over valid cells of the earlier frame (Lai et al. 2018) -> ``(B,)``.

    ``later``, ``earlier`` ``(B, C, H, W)``; ``flow_forward`` ``(B, 2, H, W)``;
    ``valid`` bool ``(B, 1, H, W)``. Items without valid cells score 0.
    """
    warped = warp_bilinear(later.double(), flow_forward.double())
    return _masked_mean((warped - earlier.double()) ** 2, valid)


def hole_cells(
    earlier_hole: torch.Tensor, later_hole: torch.Tensor, flow_forward: torch.Tensor
) -> torch.Tensor:
    """The cells of the earlier frame whose warping error touches an inpainting hole: in its
    own hole, or landing (any of the 4 bilinear neighbours) in the later frame's -> bool
    ``(B, 1, H, W)``. The rest compare known pixels with known pixels. ``warping_error``
    inside or outside the hole is ``warping_error`` with ``valid & region``."""
    landing = warp_bilinear(later_hole.double(), flow_forward.double()) > 0
    return earlier_hole.bool() | landing


def static_mask(flow_forward: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Valid cells that move less than ``STATIC_MOTION`` pixels -> bool ``(B, 1, H, W)``."""
    return valid & (flow_forward.norm(dim=1, keepdim=True) < STATIC_MOTION)


def flicker(later: torch.Tensor, earlier: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
    """Mean absolute temporal difference ``|later - earlier|`` over static cells -> ``(B,)``;
    NaN for items without static cells."""
    value = _masked_mean((later.double() - earlier.double()).abs(), static)
    return torch.where(static.flatten(1).any(1), value, torch.full_like(value, float("nan")))


def tof(flow_output: torch.Tensor, flow_reference: torch.Tensor) -> torch.Tensor:
    """tOF (Chu et al. 2020): mean end-point distance between the motion estimated on the output
    and on the reference for the same frame pair -> ``(B,)``."""
    return (flow_output.double() - flow_reference.double()).norm(dim=1).flatten(1).mean(1)


def mse(
    output: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error in [0, 1] units -> ``(B,)``; with ``mask`` (bool ``(B, 1, H, W)``)
    over its cells only (0 for items without any)."""
    squared = (output.double() - reference.double()) ** 2
    return squared.flatten(1).mean(1) if mask is None else _masked_mean(squared, mask)


def psnr(
    output: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """PSNR in dB for a [0, 1] range -> ``(B,)`` (inf for identical frames); ``mask`` as
    ``mse``'s."""
    return -10 * torch.log10(mse(output, reference, mask))


def psnr_db(error: float) -> float:
    """The PSNR in dB of a mean squared error in [0, 1] units, at most ``PSNR_CAP``."""
    return min(PSNR_CAP, -10 * math.log10(error)) if error > 0 else PSNR_CAP


def ssim(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean SSIM over RGB (scikit-image, Gaussian-free 7x7 windows, data range 1) -> ``(B,)``."""
    from skimage.metrics import structural_similarity

    values = []
    for a, b in zip(output.double().cpu().numpy(), reference.double().cpu().numpy(), strict=True):
        side = min(a.shape[-2:])
        window = min(7, side if side % 2 else side - 1)
        values.append(structural_similarity(a, b, channel_axis=0, data_range=1.0, win_size=window))
    return torch.as_tensor(np.array(values, dtype=np.float64))
