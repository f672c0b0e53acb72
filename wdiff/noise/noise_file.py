"""Warped noise of a whole video into a safetensors file, with per-frame statistics and a
picture (what ``wdiff warp-noise`` does)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from wdiff.devices import check_memory
from wdiff.feedback import SILENT, Feedback
from wdiff.flow.field import FlowField
from wdiff.flow.video_flow import FlowOptions, check_enough_frames, video_flows
from wdiff.locks import output_locks
from wdiff.noise.base import Warper
from wdiff.noise.video_noise import (
    frame_stats,
    grid_shape,
    noise_memory_bytes,
    warp_video_noise,
    write_noise_video,
)
from wdiff.outputs import atomic_output, check_output, check_suffix, default_output, save_tensors
from wdiff.video import check_video_output, open_video, resolve_input


def write_warped_noise(
    input: str | Path,
    output: Path | None = None,
    *,
    method: str = "gp",
    channels: int = 4,
    grid: int = 1,
    gp_extend: bool = False,
    seed: int = 0,
    flow: FlowOptions = FlowOptions(),
    stats: Path | None = None,
    viz: Path | None = None,
    fps: float | None = None,
    overwrite: bool = False,
    device: torch.device | str = "cpu",
    feedback: Feedback = SILENT,
) -> list[Path]:
    """Warp noise along the flows of ``input`` and save it as ``output`` (default
    ``INPUT.noise-METHOD.safetensors``): ``noise``, float32 ``(N, channels, h, w)`` on a grid
    ``grid`` times coarser than the frames, with the settings in the metadata. ``stats`` gets
    each frame's statistics as JSON (``noise.frame_stats``), ``viz`` a video of the frames beside
    channels 0-2. The memory needed is checked before allocating. Returns the files written."""
    from wdiff.noise import make_warper

    extend = {"extend": True} if gp_extend and method == "gp" else {}
    warper = make_warper(method, "--noise", **extend)
    source = resolve_input(input)
    output = output or default_output(source, f".noise-{method}.safetensors")
    _check_outputs(source, output, stats, viz, overwrite)
    with output_locks([output, stats, viz], feedback.note):  # one run per output
        reader = open_video(source, fps=fps)
        check_enough_frames(reader.info)
        device = torch.device(device)
        estimator = flow.estimator(device)
        cache = flow.cache()
        frames = reader.info.frame_count
        h, w = grid_shape(reader.info.width, reader.info.height, grid)
        check_memory(
            noise_memory_bytes(warper, frames, channels, h, w),
            device,
            f"--channels {channels} --grid {grid} ({frames} frames of {w}x{h} cells)",
            "use fewer --channels, a coarser --grid or a shorter clip",
        )
        field, _ = video_flows(reader, estimator, cache, flow.method, feedback)
        with feedback.bar(f"noise ({method})", frames) as advance:
            tensor, rows = _warp_all(field, warper, channels, seed, grid, device, advance)
        metadata = {
            "method": method,
            "seed": str(seed),
            "grid": str(grid),
            "channels": str(channels),
            "source": source.name,
            "flow": flow.method,
            "gp_extend": str(gp_extend).lower(),
        }
        save_tensors({"noise": tensor}, output, metadata)
        if stats is not None:
            with atomic_output(stats) as temporary:
                temporary.write_text(json.dumps({**metadata, "frames": rows}, indent=2) + "\n")
        if viz is not None:
            write_noise_video(reader, tensor, viz)
        return [path for path in (output, stats, viz) if path is not None]


def _check_outputs(
    source: Path, output: Path, stats: Path | None, viz: Path | None, overwrite: bool
) -> None:
    check_suffix(output, ".safetensors", "-o")
    check_output(output, [source], overwrite)
    if stats is not None:
        check_suffix(stats, ".json", "--stats")
    for extra in (stats, viz):
        if extra is not None:
            check_output(extra, [source, output], overwrite)
    if viz is not None:
        check_video_output(viz)


def _warp_all(
    field: FlowField,
    warper: Warper,
    channels: int,
    seed: int,
    grid: int,
    device: torch.device | str,
    advance,
) -> tuple[torch.Tensor, list[dict]]:
    """Every frame's noise as one CPU tensor ``(N, C, h, w)``, and each frame's statistics."""
    all_noise, rows, previous = [], [], None
    for index, (noise, motion) in enumerate(
        warp_video_noise(field, warper, channels, seed, grid, device)
    ):
        rows.append({"frame": index, **frame_stats(noise, previous, motion)})
        all_noise.append(noise.cpu())
        previous = noise
        advance(1)
    return torch.cat(all_noise).float().contiguous(), rows
