"""Algorithm 1 of Warped Diffusion: frames sampled one after another from warped noise, each
guided toward the previous frame's per-step predictions (and optionally frame 0's).

Streams: it holds the noise state and at most two frames' per-step predictions (previous and
first), on the device in the model's dtype; memory does not grow with the video's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from wdiff.diffusion.guidance import Anchor, GuidanceSettings, SelfGuide
from wdiff.diffusion.sampler import FrameResult, sample_frame
from wdiff.flow.ops import chain, chain_valid
from wdiff.models.base import Denoiser
from wdiff.noise.base import Motion, Warper


def sample_video(
    denoiser: Denoiser,
    warper: Warper,
    frames: Iterable[tuple[Any, Motion | None]],
    shape: tuple[int, int, int, int],
    sigmas: torch.Tensor,
    seed: int,
    guidance: GuidanceSettings | None = None,
    solver: str = "euler",
    device: torch.device | str = "cpu",
) -> Iterator[FrameResult]:
    """Yield each frame's result, in order.

    ``frames`` gives, per frame, the denoiser's condition and the ``Motion`` from the previous
    frame on the working grid (None for frame 0). ``shape`` = (B, C, h, w) of the working space.
    ``guidance`` None or with strength 0 is plain warped-noise sampling.
    """
    guidance = guidance or GuidanceSettings(strength=0.0)
    steps = len(sigmas) - 1
    keep_previous = guidance.strength > 0
    keep_first = guidance.first_strength > 0
    state = None
    previous: list[torch.Tensor] | None = None
    first: list[torch.Tensor] | None = None
    flow_from_first = valid_from_first = None
    for index, (cond, motion) in enumerate(frames):
        if index == 0:
            state = warper.init(shape, seed, device)
            guide = None
        else:
            if motion is None:
                raise ValueError(f"frame {index} has no motion from frame {index - 1}")
            state = warper.warp(state, motion)
            anchors = []
            if keep_previous:
                anchors.append(
                    Anchor(previous, motion.forward, motion.valid_forward, guidance.strength)
                )
            if keep_first:
                if index == 1:
                    flow_from_first, valid_from_first = motion.forward, motion.valid_forward
                else:
                    valid_from_first = chain_valid(
                        flow_from_first, valid_from_first, motion.valid_forward
                    )
                    flow_from_first = chain(flow_from_first, motion.forward)
                    anchors.append(
                        Anchor(first, flow_from_first, valid_from_first, guidance.first_strength)
                    )
            guide = SelfGuide(guidance, anchors, steps, denoiser.sigma_data)
        result = sample_frame(
            denoiser,
            warper.sample(state),
            sigmas,
            cond,
            solver=solver,
            guide=guide,
            keep_predictions=keep_previous or (keep_first and index == 0),
        )
        if index == 0 and keep_first:
            first = result.predictions
        previous = result.predictions if keep_previous else None
        yield result
