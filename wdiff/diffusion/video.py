"""Algorithm 1 of Warped Diffusion: frames sampled one after another from warped noise, each
guided toward the previous frame's per-step predictions (and optionally frame 0's).

Streams: it holds the noise state and at most two frames' per-step predictions (previous and
first), on the device in the model's dtype; memory does not grow with the video's length. The
state between frames can be saved and loaded (``VideoSampler.state_tensors``), so a run resumes
after its last finished frame with the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from wdiff.diffusion.guidance import Anchor, GuidanceSettings, SelfGuide
from wdiff.diffusion.sampler import FrameResult, sample_frame
from wdiff.flow.motion import ChainedFlow, Motion
from wdiff.models.base import Denoiser
from wdiff.noise.base import NoiseState, Warper


class VideoSampler:
    """Frame ``index`` of Algorithm 1 per :meth:`step` call, from frame 0 on.

    ``shape`` = (B, C, h, w) of the working space. ``guidance`` None or with strength 0 is plain
    warped-noise sampling.
    """

    def __init__(
        self,
        denoiser: Denoiser,
        warper: Warper,
        shape: tuple[int, int, int, int],
        sigmas: torch.Tensor,
        seed: int,
        guidance: GuidanceSettings | None = None,
        solver: str = "euler",
        device: torch.device | str = "cpu",
    ):
        self.denoiser, self.warper, self.shape = denoiser, warper, shape
        self.sigmas, self.seed, self.solver, self.device = sigmas, seed, solver, device
        self.guidance = guidance or GuidanceSettings(strength=0.0)
        self.keep_previous = self.guidance.strength > 0
        self.keep_first = self.guidance.first_strength > 0
        self.index = 0  # the next frame
        self.noise: NoiseState | None = None
        self.previous: list[torch.Tensor] | None = None
        self.first: list[torch.Tensor] | None = None
        self.from_first = ChainedFlow()  # on the working grid, kept with first_strength > 0

    def step(
        self, cond: Any, motion: Motion | None, on_step: Callable[[int], None] | None = None
    ) -> FrameResult:
        """Sample the next frame; ``motion`` from the previous frame on the working grid (None
        for frame 0); ``on_step`` as in ``sample_frame``."""
        guidance, steps = self.guidance, len(self.sigmas) - 1
        if self.index == 0:
            self.noise = self.warper.init(self.shape, self.seed, self.device)
            guide = None
        else:
            if motion is None:
                raise ValueError(f"frame {self.index} has no motion from frame {self.index - 1}")
            self.noise = self.warper.warp(self.noise, motion)
            anchors = []
            if self.keep_previous:
                anchors.append(
                    Anchor(self.previous, motion.forward, motion.valid_forward, guidance.strength)
                )
            if self.keep_first:
                flow, valid = self.from_first.add(motion.forward, motion.valid_forward)
                if self.index > 1 or not self.keep_previous:  # else frame 0 is frame 1's previous
                    anchors.append(Anchor(self.first, flow, valid, guidance.first_strength))
            guide = SelfGuide(guidance, anchors, steps, self.denoiser.sigma_data)
        result = sample_frame(
            self.denoiser,
            self.warper.sample(self.noise),
            self.sigmas,
            cond,
            solver=self.solver,
            guide=guide,
            keep_predictions=self.keep_previous or (self.keep_first and self.index == 0),
            on_step=on_step,
        )
        if self.index == 0 and self.keep_first:
            self.first = result.predictions
        self.previous = result.predictions if self.keep_previous else None
        self.index += 1
        return result

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything the next :meth:`step` depends on, as named tensors (``index`` and the
        noise frame go in as 0-d tensors)."""
        tensors = {"index": torch.tensor(self.index), "noise_frame": torch.tensor(0)}
        if self.noise is not None:
            tensors["noise_frame"] = torch.tensor(self.noise.frame)
            tensors |= {
                f"noise.{key}": value
                for key, value in self.warper.state_tensors(self.noise).items()
            }
        for name in ("previous", "first"):
            for step, prediction in enumerate(getattr(self, name) or []):
                tensors[f"{name}.{step}"] = prediction
        if self.from_first.flow is not None:
            tensors["flow_from_first"] = self.from_first.flow
            tensors["valid_from_first"] = self.from_first.valid
        return {key: value.detach().contiguous().cpu() for key, value in tensors.items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        device = self.device
        self.index = int(tensors["index"])
        noise = {key[6:]: v.to(device) for key, v in tensors.items() if key.startswith("noise.")}
        self.noise = (
            self.warper.load_state(noise, int(tensors["noise_frame"]), self.seed) if noise else None
        )
        for name in ("previous", "first"):
            steps = sorted(
                (int(key.split(".")[1]), value.to(device))
                for key, value in tensors.items()
                if key.startswith(f"{name}.")
            )
            setattr(self, name, [value for _, value in steps] or None)
        chained = [tensors.get(name) for name in ("flow_from_first", "valid_from_first")]
        self.from_first = ChainedFlow(*(t.to(device) if t is not None else None for t in chained))


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
    """Yield each frame's result, in order. ``frames`` gives, per frame, the denoiser's condition
    and the ``Motion`` from the previous frame on the working grid (None for frame 0)."""
    sampler = VideoSampler(denoiser, warper, shape, sigmas, seed, guidance, solver, device)
    for cond, motion in frames:
        yield sampler.step(cond, motion)
