"""Random Fourier features (Warped Diffusion, Daras et al. 2024, §3.1): one random function per
channel on the plane, ``xi(p) = sqrt(2/J) * sum_j w_j cos(<z_j, p> + b_j)``, with
``w ~ N(0, 1)``, ``b ~ U(0, 2 pi)`` and ``z ~ N(0, l^-2 I)`` truncated at ``truncation``
standard deviations per axis: a squared-exponential kernel, band-limited. Coordinates ``p`` are
in cells of the noise grid; the paper's length scale ``eps = 2 / (pi * resolution)`` on the unit
square is ``l = 2 / pi`` cells, so the spectrum ends at pi per cell (Nyquist).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from wdiff.noise.base import generator


@dataclass
class RandomFourierFeatures:
    """J features per channel: frequencies ``z`` (C, J, 2), weights ``w`` (C, J), phases ``b``."""

    z: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor

    @classmethod
    def sample(
        cls,
        channels: int,
        count: int,
        seed: int,
        length_scale: float = 2 / math.pi,
        truncation: float = 2.0,
        device="cpu",
    ) -> RandomFourierFeatures:
        """``count`` features per channel, float64, drawn on the CPU from ``seed``."""
        gen = generator(seed, "gp-features", device="cpu")
        sigma = 1.0 / length_scale
        z = torch.randn(channels, count, 2, generator=gen, dtype=torch.float64)
        while True:  # truncated normal by rejection, per axis
            bad = z.abs() > truncation
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=gen, dtype=torch.float64)
        w = torch.randn(channels, count, generator=gen, dtype=torch.float64)
        b = torch.rand(channels, count, generator=gen, dtype=torch.float64) * 2 * math.pi
        return cls((z * sigma).to(device), w.to(device), b.to(device))

    @property
    def count(self) -> int:
        return self.w.shape[1]

    def direct(
        self, positions: torch.Tensor, chunk: int = 4096, exact: bool = True
    ) -> torch.Tensor:
        """Evaluation at ``positions`` (P, 2) (x, y) -> (C, P). O(P * J * C).

        ``exact``: float64 throughout (the reference). Otherwise the phases are formed in
        float64, reduced mod 2 pi, and the cosines taken in float32 (about 1e-6 off, 2x faster).
        """
        out = []
        scale = math.sqrt(2.0 / self.count)
        for start in range(0, positions.shape[0], chunk):
            p = positions[start : start + chunk].to(self.z)
            phase = torch.einsum("pd,cjd->cpj", p, self.z) + self.b[:, None, :]
            if exact:
                out.append(scale * torch.einsum("cpj,cj->cp", torch.cos(phase), self.w))
            else:
                waves = torch.cos(wrap_phase(phase).float())
                out.append(scale * torch.einsum("cpj,cj->cp", waves, self.w.float()))
        return torch.cat(out, dim=1)


def wrap_phase(phase: torch.Tensor) -> torch.Tensor:
    """Reduce float64 phases mod 2 pi before the complex64 exponential keeps them accurate."""
    return torch.remainder(phase, 2 * math.pi)
