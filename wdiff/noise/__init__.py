"""Noise warpers: one interface (``Warper``), the paper's GP noise and the baselines."""

from wdiff.noise.base import NoiseState, Warper
from wdiff.noise.baselines import (
    BilinearGPWarper,
    BilinearWarper,
    FixedWarper,
    NearestWarper,
    ResampleWarper,
)
from wdiff.noise.exact import kernel
from wdiff.noise.features import RandomFourierFeatures
from wdiff.noise.gp import GPWarper
from wdiff.noise.integral import IntegralWarper
from wdiff.noise.video_noise import (
    frame_stats,
    grid_shape,
    noise_memory_bytes,
    warp_video_noise,
    write_noise_video,
)

METHODS = ("gp", "integral", "bilinear", "bilinear-gp", "nearest", "fixed", "resample")


def make_warper(method: str, option: str = "--noise", **options) -> Warper:
    """The warper named ``method``; ``options`` go to its constructor (e.g. ``extend`` for gp).
    ``option`` is the command-line option that named it, for the error message."""
    from wdiff.errors import WdiffError

    if method == "gp":
        return GPWarper(**options)
    if method == "integral":
        return IntegralWarper(**options)
    simple = {
        "bilinear": BilinearWarper,
        "bilinear-gp": BilinearGPWarper,
        "nearest": NearestWarper,
        "fixed": FixedWarper,
        "resample": ResampleWarper,
    }
    if method not in simple:
        raise WdiffError(f"{option} {method}: use one of {', '.join(METHODS)}")
    return simple[method]()


__all__ = [
    "METHODS",
    "BilinearGPWarper",
    "BilinearWarper",
    "FixedWarper",
    "GPWarper",
    "IntegralWarper",
    "NearestWarper",
    "NoiseState",
    "RandomFourierFeatures",
    "ResampleWarper",
    "Warper",
    "frame_stats",
    "grid_shape",
    "noise_memory_bytes",
    "kernel",
    "make_warper",
    "warp_video_noise",
    "write_noise_video",
]
