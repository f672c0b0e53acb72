"""Algorithm 1 of Warped Diffusion (Daras et al., NeurIPS 2024), whole, in one function.

The working code spreads the algorithm over ``video.VideoSampler`` (frames, noise warping,
anchors), ``sampler.sample_frame`` (the ODE steps) and ``guidance.SelfGuide`` (the correction),
so that it can stream, resume and tile. :func:`warped_diffusion` is the same algorithm read top
to bottom, the way EDM's ``edm_sampler`` reads its Algorithm 2: clarity over speed, every frame
held in memory, no resume state, no tiling policy. It gives the same frames as
``video.sample_video`` for the same inputs (``tests/test_algorithm1.py`` holds it to that).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from wdiff.diffusion.guidance import GuidanceSettings
from wdiff.diffusion.sampler import SOLVERS
from wdiff.flow.motion import Motion
from wdiff.flow.ops import chain, chain_valid, warp_bicubic
from wdiff.models.base import Denoiser, init_noise_sigma
from wdiff.noise.base import Warper


def warped_diffusion(
    denoiser: Denoiser,
    conditions: Sequence[Any],
    motions: Sequence[Motion],
    warper: Warper,
    shape: tuple[int, int, int, int],
    sigmas: torch.Tensor,
    seed: int,
    guidance: GuidanceSettings | None = None,
    solver: str = "euler",
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """Sample a whole video with warped noise and equivariance self-guidance (Algorithm 1).

    Args:
        denoiser: ``D(x, sigma, c) -> x0``, the posterior mean (EDM convention,
            ``x = x0 + sigma * n``), in its working space (pixels or latents).
        conditions: ``c_j`` for each frame j = 0..n, whatever ``denoiser`` takes.
        motions: n ``Motion``s on the working grid; ``motions[j - 1]`` relates frame j to frame
            j-1: ``backward`` (j -> j-1, moves the noise) and ``forward`` (j-1 -> j, warps the
            predictions), flows ``(B, 2, h, w)`` in grid cells ``(dx, dy)``, validity bool
            ``(B, 1, h, w)``.
        warper: the noise warper (``noise.make_warper``; the paper's is ``gp``).
        shape: ``(B, C, h, w)`` of the working space.
        sigmas: ``steps + 1`` noise levels, descending, the last 0 (``diffusion.schedules``).
        seed: seeds frame 0's noise (and any fresh noise the warper draws later).
        guidance: lambda toward frame j-1 (``strength``), toward frame 0 (``first_strength``),
            the share of steps guided from the first (``fraction``), and ``mode``: ``"full"``
            back-propagates through the network, ``"cheap"`` takes ``dh/dx = c_skip(sigma) I``.
            None = no guidance (plain warped-noise sampling).
        solver: ``"euler"`` (eq. 7, the paper's) or ``"heun"`` (EDM's 2nd order correction;
            the guidance step then follows the Heun step).
        device: where the noise is drawn; motions and conditions should be there already.

    Returns:
        Each frame's ``u_0^(j)``: float32 ``(B, C, h, w)`` in the working space (decode latents
        with ``denoiser.decode``).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver {solver!r}: use one of {SOLVERS}")
    if len(motions) != len(conditions) - 1:
        raise ValueError(f"{len(conditions)} frames need {len(conditions) - 1} motions")
    guidance = guidance or GuidanceSettings(strength=0.0)
    steps = len(sigmas) - 1
    guided_steps = guidance.guided_steps(steps)  # ceil(fraction * steps), the noisiest first
    sigma_data = denoiser.sigma_data

    video: list[torch.Tensor] = []
    h_previous: list[torch.Tensor] = []  # h_{j-1}[i]: frame j-1's prediction at every step i
    h_first: list[torch.Tensor] = []  # h_0[i], for the pull toward frame 0
    flow_0j = valid_0j = None  # forward flow frame 0 -> frame j, chained pair by pair
    for j, c_j in enumerate(conditions):
        # Lines 2 and 5: u_tau^(0) is fresh noise; u_tau^(j) = u_tau^(j-1) o T_j^-1, the noise
        # state carried along the backward flow (the warper never interpolates noise values).
        anchors = []  # (h_anchor, forward flow anchor -> j, its validity, lambda)
        if j == 0:
            state = warper.init(shape, seed, device)
        else:
            motion = motions[j - 1]
            state = warper.warp(state, motion)
            if guidance.strength > 0:
                anchors.append(
                    (h_previous, motion.forward, motion.valid_forward, guidance.strength)
                )
            if guidance.first_strength > 0:
                if j == 1:
                    flow_0j, valid_0j = motion.forward, motion.valid_forward
                else:  # T_0->j = T_(j-1)->j o T_0->(j-1)
                    flow_0j, valid_0j = (
                        chain(flow_0j, motion.forward),
                        chain_valid(flow_0j, valid_0j, motion.valid_forward),
                    )
                if j > 1 or guidance.strength == 0:  # else frame 0 is frame 1's previous frame
                    anchors.append((h_first, flow_0j, valid_0j, guidance.first_strength))
        noise = warper.sample(state)  # unit-scale, float32 (B, C, h, w)
        s = sigmas.to(noise.device, torch.float32)
        x = noise.to(torch.float32) * init_noise_sigma(denoiser, s)  # ~ N(0, sigma_max^2 Q)

        h_j: list[torch.Tensor] = []
        for i in range(steps):
            sigma, sigma_next = s[i], s[i + 1]
            guided = bool(anchors) and i < guided_steps
            through_network = guided and guidance.mode == "full"
            x_in = x.detach().requires_grad_(through_network)
            with torch.set_grad_enabled(through_network):
                h = denoiser(x_in, sigma, c_j)  # h_theta(u_t^(j), t, c_j)
            d = h.detach().float()

            # Eq. (7) with Karras et al.'s sign: x moves toward h as sigma falls (as printed,
            # the paper's eq. (7) moves away from h and diverges; see DESIGN.md).
            x_next = x + (sigma_next - sigma) / sigma * (x - d)
            if solver == "heun" and sigma_next > 0:  # the mean of the slopes at both ends
                with torch.no_grad():
                    d_next = denoiser(x_next, sigma_next, c_j).float()
                slope, slope_next = (x - d) / sigma, (x_next - d_next) / sigma_next
                x_next = x + (sigma_next - sigma) * (slope + slope_next) / 2

            if guided:
                # Equivariance self-guidance (lines 9-10), per anchor a (frame j-1, frame 0):
                #   e_a = sum_valid (warp_bicubic(h, T_a->j) - h_a[i])^2   (h o T_j in eq. 8)
                #   x_next -= lambda_a / sqrt(e_a) * grad_x e_a,
                # the coefficient capped at 1/2 (the exact correction were dh/dx = I), so a
                # small residual is not overshot. "full": grad_x through the network; "cheap":
                # grad_x e = c_skip(sigma) grad_h e (dh/dx of the ideal Gaussian denoiser).
                prediction = h.float() if through_network else d.clone().requires_grad_(True)
                with torch.enable_grad():
                    loss = prediction.new_zeros(())
                    for h_anchor, flow, valid, strength in anchors:
                        warped = warp_bicubic(prediction, flow.to(prediction.dtype))
                        residual = warped - h_anchor[i].to(prediction.dtype)
                        e = (residual**2 * valid.to(prediction.dtype)).flatten(1).sum(1)  # (B,)
                        coefficient = (strength / (e.detach() + 1e-12).sqrt()).clamp(max=0.5)
                        loss = loss + (coefficient * e).sum()
                    (grad,) = torch.autograd.grad(loss, x_in if through_network else prediction)
                if not through_network:
                    grad = sigma_data**2 / (sigma**2 + sigma_data**2) * grad
                x_next = x_next - grad.float()

            h_j.append(h.detach().to(denoiser.dtype))  # keep h_j[i] for frame j+1's guidance
            x = x_next.detach()

        video.append(x)
        h_previous = h_j
        if j == 0:
            h_first = h_j
    return video
