"""Sampling: sigma schedules, the PF-ODE step, equivariance self-guidance, Algorithm 1, and the
batch-consistent baseline. Plain functions over a ``Denoiser``."""

from wdiff.diffusion.algorithm1 import warped_diffusion
from wdiff.diffusion.batch_consistent import (
    BatchConsistentSettings,
    Window,
    sample_batch_consistent,
    sample_window,
)
from wdiff.diffusion.guidance import Anchor, GuidanceSettings, SelfGuide, warp_residual_energy
from wdiff.diffusion.sampler import FrameResult, euler_step, heun_step, sample_frame
from wdiff.diffusion.schedules import discrete_sigmas, karras_sigmas, training_sigmas
from wdiff.diffusion.video import sample_video

__all__ = [
    "Anchor",
    "BatchConsistentSettings",
    "FrameResult",
    "GuidanceSettings",
    "SelfGuide",
    "Window",
    "discrete_sigmas",
    "euler_step",
    "heun_step",
    "karras_sigmas",
    "sample_batch_consistent",
    "sample_frame",
    "sample_video",
    "sample_window",
    "training_sigmas",
    "warp_residual_energy",
    "warped_diffusion",
]
