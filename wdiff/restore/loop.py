"""``restore``: a video through guided sampling and the writer, frame by frame.

The input is read once here (its flows were computed before); no more than a frame or two of
predictions, one mask frame and one flow pair are held, and the writer encodes as frames come.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import torch

from wdiff.config import RestoreSettings
from wdiff.errors import WdiffError
from wdiff.restore.checkpoint import Checkpoint
from wdiff.restore.frame_inputs import FrameInputs
from wdiff.restore.models import load_denoiser, make_task
from wdiff.restore.plan import RestorePlan
from wdiff.restore.preview import kept_inputs, side_by_side
from wdiff.restore.report import ReportRows, summarise
from wdiff.restore.runs import consistent_frames, warped_frames
from wdiff.restore.tiles import TilePolicy


def restore(
    reader,
    field,
    output: Path,
    settings: RestoreSettings,
    device: torch.device,
    masks=None,
    advance: Callable[[int], None] | None = None,
    stage_seconds: dict | None = None,
    denoiser=None,
    run_state=None,
    on_step: Callable[[int], None] | None = None,
    on_tile: Callable[[int, int, int], None] | None = None,
    on_report: Callable[[dict], None] | None = None,
    warn: Callable[[str], None] | None = None,
    preset: str | None = None,
    command_line: list[str] | None = None,
    preview: Path | None = None,
) -> dict:
    """Restore every frame of ``reader`` into ``output`` (fps and audio kept) and return the
    report (written as ``OUT.report.json`` and ``OUT.frames.csv`` by ``write_report``).

    ``field`` is the input's ``FlowField`` (None for a single frame); ``masks`` a
    ``video.MaskReader`` for inpainting. ``advance(n)`` is called as frames are written,
    ``on_step(k)`` after each diffusion step of a frame (warped method). ``run_state`` (a
    ``resume.RunState``) records every finished frame and the state after it
    (batch-consistent: after each window); when it holds an interrupted run's state, that run
    continues. ``denoiser`` is loaded from ``settings`` when not given.

    ``settings.tile`` "auto": frames are tiled at the model's ``max_tile`` when they exceed it;
    with the warped method, a frame that runs out of memory is redone in tiles half the size
    (``restore.tiles.TilePolicy``), and ``on_tile(frame, old, new)`` told (output pixels per
    side, 0 = whole frames). Each report row records its frame's tile; the resume state the
    current one, so a resumed run keeps it.

    ``on_report(report)`` is called after the last frame, before the video is renamed into
    place (``job`` writes the report files there, so a complete output always has them).
    ``warn`` hears what the output could not keep of the input's streams. ``preset`` and
    ``command_line`` (the CLI's arguments; None from Python) go into the report.

    ``preview`` (inpainting): also write each frame's masked input beside the output there
    (``restore.preview``), renamed into place just before the output.
    """
    from wdiff.video import VideoWriter, tensor_to_frames

    if preview is not None and masks is None:
        raise WdiffError(f"{preview}: a preview shows the inpainting mask; give masks")
    stage_seconds = stage_seconds if stage_seconds is not None else {}
    if denoiser is None:
        began = time.perf_counter()
        denoiser = load_denoiser(settings, device)
        stage_seconds["load_model"] = time.perf_counter() - began
    plan = RestorePlan.build(settings, reader.info, denoiser, device)
    tiles = TilePolicy(settings.tile, settings.tile_overlap, denoiser, plan.grid)
    checkpoint = Checkpoint(run_state)
    resumed = checkpoint.load()
    tiles.load_state_tensors(resumed.parts["tiling"])
    start = resumed.start
    inputs = FrameInputs(
        denoiser, make_task(settings), settings.prompt, field, plan.factor, device, masks, start
    )
    # at the input's own precision: uint16 from a source of more than 8 bits
    frames = enumerate(reader.frames(start=start, deep=True), start=start)
    if settings.sampler == "warped":
        keep_state = tiles.auto or run_state is not None
        before = resumed.parts["sampler"] or None
        sampled = warped_frames(plan, frames, inputs, tiles, before, keep_state, on_step, on_tile)
    else:
        sampled = consistent_frames(plan, frames, inputs, tiles)
    report = ReportRows(denoiser.scale if denoiser.space == "latent" else None, resumed.rows)
    report.temporal.load_state_tensors(resumed.parts["report"], device)
    frame_count = reader.info.frame_count

    def video(path: Path, warn) -> VideoWriter:
        return VideoWriter(
            path,
            reader.info.fps,
            crf=settings.crf,
            source=reader.info,  # colour, depth, frame times, audio and subtitles kept
            codec=settings.codec,
            pix_fmt=settings.pix_fmt,
            warn=warn,
        )

    writer = video(output, warn)
    shown = video(preview, None) if preview is not None else None  # the output's warnings
    # an output of more than 8 bits (10-bit HEVC, FFV1, ...) gets uint16 frames
    deep = writer.bit_depth(plan.size) > 8
    with writer, shown or contextlib.nullcontext():
        if start:
            seen = kept_inputs(reader, masks, start, deep) if shown is not None else None
            for frame in checkpoint.kept_frames(start, deep):
                writer.write(frame)
                if seen is not None:
                    shown.write(side_by_side(*next(seen), frame))
            if advance:
                advance(start)
        for index, (pixels, sampler_state, x0) in enumerate(sampled, start=start):
            pixels = pixels.clamp(-1, 1)
            observed = hole = None
            if settings.task == "inpaint":  # the input's own pixels outside the hole
                frame, hole = inputs.take_observed(index)
                pixels = inputs.task.paste_known(pixels, frame, hole, settings.feather)
                observed = (frame + 1) / 2
            encoded = tensor_to_frames(pixels.cpu(), deep)
            writer.write(encoded)
            if shown is not None:
                source = tensor_to_frames(frame.cpu(), deep)[0]
                shown.write(side_by_side(source, hole[0, 0].cpu().numpy(), encoded[0]))
            motion = inputs.motion(index) if index > 0 else None
            report.add(index, (pixels + 1) / 2, motion, x0, tiles.pixels(), observed, hole)
            # batch-consistent windows are independent: the state is kept at their ends only
            window_open = settings.sampler != "warped" and (index + 1) % settings.window != 0
            parts = None
            if not (window_open and index + 1 < frame_count):
                parts = {
                    "sampler": sampler_state,
                    "report": report.temporal.state_tensors(),
                    "tiling": tiles.state_tensors(),
                }
            checkpoint.save(index, encoded[0], report.rows, parts)
            if advance:
                advance(1)
        rows = report.rows
        stage_seconds["sample_and_write"] = sum(row["seconds"] for row in rows)
        summary = summarise(
            settings,
            rows,
            stage_seconds,
            device,
            reader.info,
            output,
            plan.size,
            mask=masks.path if masks is not None else None,
            preset=preset,
            command_line=command_line,
        )
        summary["tiling"] = {
            "tile": settings.tile,
            "tile_used": rows[-1]["tile"] if rows else 0,
            "overlap_used": tiles.overlap_pixels(),
        }
        if on_report:
            on_report(summary)
    return summary
