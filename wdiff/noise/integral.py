"""Integral-noise warping ("How I Warped Your Noise", Chang et al. 2024), as particles.

Each noise cell is the integral of white noise over its area. To move it, every cell of frame
j-1 is split into k x k sub-cells by a Brownian bridge (sub-integrals drawn conditionally on the
cell's value, so jointly they are i.i.d. N(0, 1/k²)); each sub-cell travels as a particle along
the forward flow and lands in one cell of frame j. A cell's new value is the sum of the particles
it caught divided by the square root of their area (count / k²). Disjoint sums of i.i.d. normals,
so every cell is exactly N(0, 1) and cells are independent; cells that catch nothing, or whose
backward flow is invalid, get fresh noise. Particles from cells that become occluded are dropped.
An integer shift moves whole cells: the noise is reproduced exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wdiff.flow.motion import Motion
from wdiff.noise.base import NoiseState, Warper, generator


class IntegralWarper(Warper):
    name = "integral"

    def __init__(self, subdivisions: int = 3):
        self.k = subdivisions

    def warp(self, state: NoiseState, motion: Motion) -> NoiseState:
        frame = state.frame + 1
        noise = state.noise
        batch, channels, height, width = noise.shape
        k = self.k
        device = noise.device
        # Brownian bridge: sub-integrals given each cell's value (unnormalised: they sum to it).
        z = torch.randn(
            (batch, channels, height * k, width * k),
            generator=generator(state.seed, self.name, "bridge", frame, device=device),
            device=device,
        )
        block_mean = F.avg_pool2d(z, k)
        up = lambda t: t.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)  # noqa: E731
        parts = up(noise) / (k * k) + (z - up(block_mean)) / k

        # sub-cell centres in frame j-1 (cell centres at integers), moved by the forward flow
        offsets = (torch.arange(k, device=device, dtype=torch.float32) + 0.5) / k - 0.5
        ys = (torch.arange(height, device=device, dtype=torch.float32)[:, None] + offsets).reshape(
            -1
        )
        xs = (torch.arange(width, device=device, dtype=torch.float32)[:, None] + offsets).reshape(
            -1
        )
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        sample = torch.stack(
            [grid_x * 2 / max(width - 1, 1) - 1, grid_y * 2 / max(height - 1, 1) - 1], dim=-1
        ).expand(batch, -1, -1, -1)
        flow = F.grid_sample(
            motion.forward.float(),
            sample,
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
        )
        target_x = torch.round(grid_x + flow[:, 0]).long()
        target_y = torch.round(grid_y + flow[:, 1]).long()
        source_valid = up(motion.valid_forward)[:, 0]
        keep = (
            source_valid
            & (target_x >= 0)
            & (target_x < width)
            & (target_y >= 0)
            & (target_y < height)
        )
        cells = height * width
        index = torch.where(keep, target_y * width + target_x, cells)  # dropped -> a spare slot
        index = (index + torch.arange(batch, device=device)[:, None, None] * (cells + 1)).reshape(
            -1
        )

        flat_parts = parts.permute(1, 0, 2, 3).reshape(channels, -1)
        sums = torch.zeros(channels, batch * (cells + 1), device=device)
        sums.index_add_(1, index, flat_parts)
        counts = torch.zeros(batch * (cells + 1), device=device)
        counts.index_add_(0, index, torch.ones_like(index, dtype=counts.dtype))
        sums = sums.view(channels, batch, cells + 1)[..., :cells]
        counts = counts.view(batch, cells + 1)[:, :cells]
        area = (counts / (k * k)).clamp_min(1e-12)
        moved = (sums / area.sqrt()).view(channels, batch, height, width).permute(1, 0, 2, 3)
        caught = (counts > 0).view(batch, 1, height, width) & motion.valid_backward
        fresh = self.fresh(state, frame)
        return NoiseState(frame, torch.where(caught, moved, fresh), state.seed)
