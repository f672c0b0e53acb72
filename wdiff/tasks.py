"""Degradations and their linear operators: super-resolution (area downsampling) and
inpainting (a mask). Images are float [-1, 1] ``(N, 3, H, W)``; masks bool ``(N, 1, H, W)``,
True = missing (to fill)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LinearOperator:
    """``forward``: image -> observation; ``adjoint``: observation -> image (its transpose)."""

    forward: callable
    adjoint: callable


def cg_least_squares(
    operator: LinearOperator, start: torch.Tensor, observation: torch.Tensor, steps: int
) -> torch.Tensor:
    """``steps`` conjugate-gradient iterations on ``A^T A x = A^T y`` from ``start`` (CGLS): the
    iterate stays in ``start`` + a Krylov subspace, so it keeps what the data does not fix.
    One joint solve over the whole batch (all frames of a window), as Kwon & Ye do."""
    x = start
    residual = operator.adjoint(observation - operator.forward(x))
    direction = residual
    norm = (residual * residual).sum()
    for _ in range(steps):
        if norm <= 1e-20:
            break
        product = operator.adjoint(operator.forward(direction))
        alpha = norm / (direction * product).sum().clamp_min(1e-30)
        x = x + alpha * direction
        residual = residual - alpha * product
        new_norm = (residual * residual).sum()
        direction = residual + (new_norm / norm) * direction
        norm = new_norm
    return x


@dataclass
class SuperResolution:
    """``scale``x super-resolution: the observation is the area average over scale x scale."""

    scale: int
    name: str = "sr"

    def degrade(self, frames: torch.Tensor) -> torch.Tensor:
        """High-res ``(N, C, H, W)`` -> low-res ``(N, C, H/scale, W/scale)`` (sizes divisible)."""
        return F.avg_pool2d(frames, self.scale)

    def upsample(self, low: torch.Tensor) -> torch.Tensor:
        """Bicubic upsampling by ``scale`` (the conditioning image), clamped to [-1, 1]."""
        up = F.interpolate(low, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return up.clamp(-1, 1)

    def operator(self) -> LinearOperator:
        scale = self.scale

        def adjoint(low: torch.Tensor) -> torch.Tensor:
            up = low.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
            return up / scale**2

        return LinearOperator(self.degrade, adjoint)


@dataclass
class Inpainting:
    """Inpainting: the observation is the image where the mask is False (known pixels)."""

    name: str = "inpaint"

    @staticmethod
    def degrade(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Known pixels kept, missing ones set to 0 (mid-grey)."""
        return frames * (~mask).to(frames.dtype)

    def operator(self, mask: torch.Tensor) -> LinearOperator:
        def keep(x: torch.Tensor) -> torch.Tensor:
            return self.degrade(x, mask.to(x.device))

        return LinearOperator(keep, keep)

    @staticmethod
    def paste_known(
        result: torch.Tensor, frame: torch.Tensor, mask: torch.Tensor, feather: int = 0
    ) -> torch.Tensor:
        """``result`` inside the hole, ``frame`` (the input) outside it, both ``(N, 3, H, W)``;
        ``mask`` bool ``(N, 1, H, W)``, True = hole. With ``feather`` the result fades into
        the input over the ``2 * feather`` pixels inside the hole's edge; outside the hole
        the input is kept exactly in every case."""
        known = (~mask).to(result.dtype)
        if feather > 0:
            size = 2 * feather + 1
            grown = F.max_pool2d(known, size, stride=1, padding=feather)
            # a window of ones averages to exactly 1: known pixels stay exactly known
            known = F.avg_pool2d(grown, size, stride=1, padding=feather, count_include_pad=False)
            known = torch.maximum(known, (~mask).to(result.dtype))
        return result * (1 - known) + frame.to(result.dtype) * known
