"""Temporal-consistency and restoration metrics (tensors in, numbers out)."""

from __future__ import annotations

import torch

from wdiff.flow.ops import warp_bilinear


def warping_error(
    later: torch.Tensor, earlier: torch.Tensor, flow_forward: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Mean squared difference between ``earlier`` and ``later`` warped back by the forward flow
    (earlier -> later), over valid cells of the earlier frame (Lai et al. 2018) -> ``(B,)``.

    ``later``, ``earlier`` ``(B, C, H, W)``; ``flow_forward`` ``(B, 2, H, W)``;
    ``valid`` bool ``(B, 1, H, W)``. Items without valid cells score 0.
    """
    warped = warp_bilinear(later.double(), flow_forward.double())
    weight = valid.expand_as(warped).double()
    squared = (warped - earlier.double()) ** 2 * weight
    return squared.flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1)
