"""Equivariance self-guidance (Warped Diffusion, Algorithm 1).

At step i of frame j the prediction ``h`` is warped by the forward flow, bicubic (a bilinear
warp blurs at sub-pixel offsets, and the guidance would sharpen ``h`` to make up for it), into
the anchor frame's layout (frame j-1, or frame 0 through chained flows) and compared with the
anchor's prediction at the same step on valid cells:
``e = sum_valid (warp(h, flow) - h_anchor[i])^2`` (a sum, as DPS's norm), and the next ``x``
moves by ``lambda / sqrt(e) * grad_x e``, i.e. ``2 lambda * grad_x sqrt(e)``: a step of fixed
length set by lambda, in the direction that makes the prediction equivariant.

``mode="full"`` back-propagates through the network. ``mode="cheap"`` does not: it replaces the
network's Jacobian ``dh/dx`` by ``c_skip(sigma) I = sigma_data^2 / (sigma^2 + sigma_data^2) I``,
the Jacobian of the ideal denoiser for isotropic Gaussian data of std ``sigma_data`` (close to
the identity at low noise, where the fine detail is decided), so only the warp is differentiated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from wdiff.flow.ops import warp_bicubic

MODES = ("full", "cheap")


@dataclass
class GuidanceSettings:
    """``strength``: lambda toward the previous frame (the paper's 1.0; 0 turns guidance off).
    ``fraction``: share of the steps guided, counted from the first (noisiest) step.
    ``mode``: "full" or "cheap" (see the module docstring).
    ``first_strength``: lambda toward frame 0 through chained flows (stops drift; 0 = off)."""

    strength: float = 1.0
    fraction: float = 1.0
    mode: str = "full"
    first_strength: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"guidance mode {self.mode!r}: use one of {MODES}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"guidance fraction {self.fraction}: use a value in [0, 1]")
        if self.strength < 0 or self.first_strength < 0:
            raise ValueError("guidance strengths must be >= 0")

    def guided_steps(self, steps: int) -> int:
        return math.ceil(self.fraction * steps)


@dataclass
class Anchor:
    """A frame the current one is pulled toward: its per-step predictions ``(B, C, h, w)``, the
    forward flow from it to the current frame ``(B, 2, h, w)`` (working grid), the validity of
    that flow over the anchor's cells ``(B, 1, h, w)``, and the strength lambda."""

    predictions: list[torch.Tensor]
    flow: torch.Tensor
    valid: torch.Tensor
    strength: float


def warp_residual_energy(
    prediction: torch.Tensor, reference: torch.Tensor, flow: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Per batch item ``sum_valid (warp(prediction, flow) - reference)^2`` -> ``(B,)``.

    ``prediction`` is the later frame; ``flow`` maps the reference frame to it (forward).
    """
    warped = warp_bicubic(prediction, flow.to(prediction.dtype))
    squared = (warped - reference.to(prediction.dtype)) ** 2 * valid.to(prediction.dtype)
    return squared.flatten(1).sum(1)


class SelfGuide:
    """The guidance hook of ``sampler.sample_frame`` for one frame."""

    def __init__(
        self, settings: GuidanceSettings, anchors: list[Anchor], steps: int, sigma_data: float
    ):
        self.settings = settings
        self.anchors = [anchor for anchor in anchors if anchor.strength > 0]
        self.steps = settings.guided_steps(steps)
        self.sigma_data = sigma_data
        self.last_error = 0.0

    def active(self, step: int) -> bool:
        return bool(self.anchors) and step < self.steps

    def needs_graph(self) -> bool:
        return self.settings.mode == "full"

    def _loss(self, prediction: torch.Tensor, step: int) -> torch.Tensor:
        loss = prediction.new_zeros(())
        for number, anchor in enumerate(self.anchors):
            energy = warp_residual_energy(
                prediction, anchor.predictions[step], anchor.flow, anchor.valid
            )
            if number == 0:
                cells = anchor.valid.flatten(1).sum(1).clamp_min(1) * prediction.shape[1]
                self.last_error = float((energy.detach() / cells).mean())
            # the step is coefficient * grad e with coefficient lambda / sqrt(e), capped at 1/2
            # (the exact correction when dh/dx = I), so a small residual is not overshot
            coefficient = anchor.strength / (energy.detach() + 1e-12).sqrt()
            coefficient = coefficient.clamp(max=0.5)
            loss = loss + (coefficient * energy).sum()
        return loss

    def gradient(
        self, x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, step: int
    ) -> torch.Tensor:
        if self.settings.mode == "full":  # the graph of ``denoised`` was built with grad on
            with torch.enable_grad():  # so a caller's no_grad() does not drop the loss's
                (grad,) = torch.autograd.grad(self._loss(denoised.float(), step), x)
            return grad.float()
        prediction = denoised.detach().float().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self._loss(prediction, step), prediction)
        c_skip = self.sigma_data**2 / (sigma.float() ** 2 + self.sigma_data**2)
        return c_skip * grad
