"""The two ways a restore samples its frames, as generators of finished frames in order:
Warped Diffusion (``diffusion.VideoSampler``, one frame after another, with ``--tile auto``'s
redo on running out of memory) and the batch-consistent baseline (independent windows)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch

from wdiff.diffusion.tiling import is_out_of_memory
from wdiff.restore.frame_inputs import FrameInputs
from wdiff.restore.plan import RestorePlan
from wdiff.restore.tiles import TilePolicy


class Sampled(NamedTuple):
    """One finished frame: ``pixels`` ``(1, 3, H, W)`` in [-1, 1] (not yet clamped), the
    sampler's state after it (None where nothing is kept) and the working-space result
    ``(1, C, h, w)``."""

    pixels: torch.Tensor
    sampler_state: dict[str, torch.Tensor] | None
    x0: torch.Tensor


def warped_frames(
    plan: RestorePlan,
    frames: Iterator[tuple[int, np.ndarray]],
    inputs: FrameInputs,
    tiles: TilePolicy,
    before: dict[str, torch.Tensor] | None,
    keep_state: bool,
    on_step: Callable[[int], None] | None = None,
    on_tile: Callable[[int, int, int], None] | None = None,
) -> Iterator[Sampled]:
    """Algorithm 1 over ``frames`` ((index, uint8 or uint16 frame) pairs), starting from the
    sampler state ``before`` (None: at frame 0). A frame that runs out of memory under ``--tile
    auto`` is redone from its start with a smaller tile (``tiles.lower``), and ``on_tile(frame,
    old, new)`` (output pixels per side, 0 = whole frames) told once it is done."""
    sampler = _new_sampler(plan, tiles, before)
    for index, frame in frames:
        cond, _, _ = inputs.condition(index, frame)
        motion = None if index == 0 else inputs.motion(index).to_grid(plan.denoiser.scale)
        lowered_from = None  # the tile this frame first tried, if it had to lower it
        while True:
            try:
                result = sampler.step(cond, motion, on_step)
                break
            except RuntimeError as error:  # torch.OutOfMemoryError is one
                if not (tiles.auto and is_out_of_memory(error)):
                    raise
                message = str(error).splitlines()[0]
            # out of the handler, the traceback (and the tensors it holds) is gone
            sampler = None
            _free_memory(plan.device)
            lowered_from = tiles.tile if lowered_from is None else lowered_from
            tiles.lower(message)
            sampler = _new_sampler(plan, tiles, before)  # the frame again, from its start
        if lowered_from is not None and on_tile is not None:
            on_tile(index, tiles.pixels(lowered_from), tiles.tile * tiles.scale)
        before = sampler.state_tensors() if keep_state else None
        with torch.no_grad():
            yield Sampled(plan.denoiser.decode(result.x0).float(), before, result.x0)


def _new_sampler(plan: RestorePlan, tiles: TilePolicy, before: dict | None):
    """A sampler at the state ``before`` (None: frame 0) with the current tile size; a fresh
    warper too, as a resumed run has, so a redone frame equals a first try."""
    from wdiff.diffusion import GuidanceSettings
    from wdiff.diffusion.video import VideoSampler
    from wdiff.noise import make_warper

    settings = plan.settings
    guidance = GuidanceSettings(
        strength=settings.guidance,
        fraction=settings.guidance_fraction,
        mode=settings.guidance_mode,
        first_strength=settings.first_guidance,
    )
    extend = settings.gp_extend and settings.noise == "gp"
    warper = make_warper(settings.noise, **({"extend": True} if extend else {}))
    sampler = VideoSampler(
        tiles.wrap(plan.denoiser),
        warper,
        plan.shape,
        plan.sigmas,
        settings.seed,
        guidance,
        settings.solver,
        plan.device,
    )
    if before is not None:
        sampler.load_state_tensors(before)
    return sampler


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def consistent_frames(
    plan: RestorePlan,
    frames: Iterator[tuple[int, np.ndarray]],
    inputs: FrameInputs,
    tiles: TilePolicy,
) -> Iterator[Sampled]:
    """Kwon & Ye's batch-consistent sampling over windows of ``settings.window`` frames; a
    resumed run's ``frames`` start at a window's first frame (windows are independent)."""
    from wdiff.diffusion import BatchConsistentSettings, sample_batch_consistent

    settings = plan.settings
    batch = BatchConsistentSettings(settings.window, settings.cg_steps, settings.eta)
    model = tiles.wrap(plan.denoiser)  # --tile auto: the model's size only
    windows = _windows(frames, inputs, settings.window)
    for x0 in sample_batch_consistent(
        model, windows, plan.shape[1:], plan.sigmas, settings.seed, batch, plan.device
    ):
        with torch.no_grad():
            yield Sampled(plan.denoiser.decode(x0).float(), None, x0)


def _windows(frames: Iterator[tuple[int, np.ndarray]], inputs: FrameInputs, size: int):
    """``diffusion.Window``s of up to ``size`` frames: conditions, operator and observation."""
    from wdiff.diffusion import Window
    from wdiff.tasks import SuperResolution

    while True:
        chunk = [pair for _, pair in zip(range(size), frames, strict=False)]
        if not chunk:
            return
        conds, observed, holes = zip(*(inputs.condition(i, f) for i, f in chunk), strict=True)
        observed = torch.cat(observed)
        task = inputs.task
        if isinstance(task, SuperResolution):
            operator = task.operator()
        else:
            hole = torch.cat(holes)
            operator, observed = task.operator(hole), task.degrade(observed, hole)
        yield Window(torch.cat(conds), len(chunk), operator, observed)
