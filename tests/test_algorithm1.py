"""``warped_diffusion``, Algorithm 1 read whole, gives the frames of the streaming sampler."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from denoisers import ConvDenoiser

from wdiff.diffusion import GuidanceSettings, karras_sigmas, sample_video, warped_diffusion
from wdiff.diffusion.video import VideoSampler
from wdiff.flow import Motion, consistency_mask
from wdiff.noise import make_warper

SIZE = 24


def wavy_motion(height: int = SIZE, width: int = SIZE) -> Motion:
    """A smooth, non-integer motion (bilinear weights everywhere) with a border left invalid."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    dx = 1.5 + 0.5 * torch.sin(2 * math.pi * ys / height)
    dy = 0.25 + 0.25 * torch.cos(2 * math.pi * xs / width)
    forward = torch.stack([dx, dy])[None]
    backward = -forward
    return Motion(
        backward, consistency_mask(backward, forward), forward, consistency_mask(forward, backward)
    )


def pinned_denoiser() -> ConvDenoiser:
    """Not translation-equivariant (a pattern fixed to the screen), so guidance has work."""
    gen = torch.Generator().manual_seed(3)
    pattern = F.avg_pool2d(torch.randn(1, 3, SIZE, SIZE, generator=gen), 5, 1, 2)
    return ConvDenoiser(pinned=pattern * 0.2 / pattern.std())


def warper_for(method: str):
    return make_warper(method, extend=True) if method == "gp" else make_warper(method)


def both_ways(denoiser, method, guidance, frames=3, steps=6, solver="euler", seed=2):
    """(reference frames, VideoSampler frames) for the same inputs."""
    motion = wavy_motion()
    conditions, motions = [None] * frames, [motion] * (frames - 1)
    shape, sigmas = (1, denoiser.channels, SIZE, SIZE), karras_sigmas(steps)
    args = (shape, sigmas, seed)
    reference = warped_diffusion(
        denoiser, conditions, motions, warper_for(method), *args, guidance, solver
    )
    sampler = VideoSampler(denoiser, warper_for(method), *args, guidance, solver)
    streamed = [
        sampler.step(cond, motion).x0
        for cond, motion in zip(conditions, [None, *motions], strict=True)
    ]
    return reference, streamed


def assert_same(reference, streamed):
    """Bit for bit: the same operations in the same order on the CPU."""
    assert len(reference) == len(streamed)
    for j, (ours, theirs) in enumerate(zip(reference, streamed, strict=True)):
        assert ours.dtype == theirs.dtype == torch.float32
        difference = float((ours - theirs).abs().max())
        assert torch.equal(ours, theirs), f"frame {j}: off by up to {difference:.3g}"


CASES = {
    "off-gp": ("gp", None, "euler"),
    "full-gp": ("gp", GuidanceSettings(strength=1.0, mode="full"), "euler"),
    "cheap-gp": ("gp", GuidanceSettings(strength=1.0, mode="cheap"), "euler"),
    "full-integral-fraction-first": (
        "integral",
        GuidanceSettings(strength=1.0, fraction=0.5, mode="full", first_strength=0.5),
        "euler",
    ),
    "cheap-nearest-heun-first-only": (
        "nearest",
        GuidanceSettings(strength=0.0, mode="cheap", first_strength=1.0),
        "heun",
    ),
    # lambda / sqrt(e) above 1/2: the cap on the guidance step is reached
    "full-bilinear-heun-strong": ("bilinear", GuidanceSettings(strength=30.0), "heun"),
}


@pytest.mark.parametrize("case", CASES)
def test_reference_equals_the_streaming_sampler(case):
    method, guidance, solver = CASES[case]
    frames = 4 if guidance is not None and guidance.first_strength > 0 else 3
    reference, streamed = both_ways(pinned_denoiser(), method, guidance, frames, solver=solver)
    assert_same(reference, streamed)
    if guidance is not None:  # guidance changed the frames a lot: the comparison has teeth
        plain, _ = both_ways(pinned_denoiser(), method, None, frames, solver=solver)
        assert torch.equal(plain[0], reference[0])  # frame 0 is never guided
        assert float((plain[-1] - reference[-1]).abs().max()) > 1e-2


def test_reference_equals_sample_video_on_a_builtin_network(sr_model):
    """A real (tiny, random) network with a condition: full guidance back-propagates through
    it, toward the previous frame and frame 0."""
    from wdiff.models.builtin import BuiltinDenoiser, BuiltinNet

    net, _ = BuiltinNet.load(sr_model)
    denoiser = BuiltinDenoiser(net)
    gen = torch.Generator().manual_seed(7)
    conditions = [torch.rand(1, 3, SIZE, SIZE, generator=gen) * 2 - 1 for _ in range(3)]
    motions = [wavy_motion()] * 2
    guidance = GuidanceSettings(strength=1.0, mode="full", first_strength=0.5)
    shape, sigmas = (1, 3, SIZE, SIZE), denoiser.sigmas(4)
    reference = warped_diffusion(
        denoiser, conditions, motions, warper_for("gp"), shape, sigmas, 5, guidance
    )
    inputs = zip(conditions, [None, *motions], strict=True)
    streamed = sample_video(denoiser, warper_for("gp"), inputs, shape, sigmas, 5, guidance)
    assert_same(reference, [result.x0 for result in streamed])


def test_settings_it_cannot_follow_are_refused():
    denoiser, motion = pinned_denoiser(), wavy_motion()
    args = (warper_for("fixed"), (1, 3, SIZE, SIZE), karras_sigmas(2), 0)
    with pytest.raises(ValueError, match="solver 'dpm'"):
        warped_diffusion(denoiser, [None, None], [motion], *args, solver="dpm")
    with pytest.raises(ValueError, match="3 frames need 2 motions"):
        warped_diffusion(denoiser, [None] * 3, [motion], *args)
