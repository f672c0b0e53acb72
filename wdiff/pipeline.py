"""The main job: a video through flow, noise, guided sampling and the writer, frame by frame.

``restore`` reads the input twice (flows first, then sampling) and never holds the whole video:
the sampler keeps one or two frames' per-step predictions, the writer encodes as frames come.
"""

from __future__ import annotations

import csv
import gc
import json
import platform
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from wdiff.config import RestoreSettings
from wdiff.diffusion.tiling import (
    TilesExhausted,
    auto_tile,
    is_out_of_memory,
    tile_in_use,
    tile_overlap,
    tiled,
)
from wdiff.errors import WdiffError
from wdiff.flow.motion import Motion
from wdiff.flow.ops import chain, chain_valid, resize_to_grid, upscale_flow


def load_denoiser(settings: RestoreSettings, device: torch.device):
    from wdiff.models.builtin import BuiltinDenoiser, BuiltinNet, load_builtin

    name = settings.model
    if name in ("builtin", f"builtin:{settings.task}"):
        return load_builtin(settings.task, device)
    if name.startswith("builtin:"):
        raise WdiffError(f"--model {name}: for this task use builtin:{settings.task}")
    path = Path(name)
    if path.is_dir() and (path / "model.safetensors").is_file():
        path = path / "model.safetensors"  # a `wdiff finetune` run folder
    if path.suffix == ".safetensors" and path.is_file():
        net, _ = BuiltinNet.load(path)
        if net.config.task != settings.task:
            raise WdiffError(f"--model {name}: trained for {net.config.task}, not {settings.task}")
        return BuiltinDenoiser(net, device)
    if not path.exists():
        raise WdiffError(f"--model {name}: no such file or folder; use builtin or a model file")
    if path.is_dir():
        from wdiff.models.sdxl import SDXLDenoiser, SDXLOptions

        options = SDXLOptions(
            settings.dtype, settings.vae_tiling, settings.vae_slicing, settings.cpu_offload
        )
        denoiser = SDXLDenoiser(path, settings.task, device, options)
        if denoiser.widened:  # zero weights for the observation: it would be ignored
            kind = "upscaling" if settings.task == "sr" else "inpainting"
            raise WdiffError(
                f"--model {name}: this SDXL is not fine-tuned for {kind} (its UNet takes no "
                f"observation); run `wdiff finetune --task {settings.task} --arch {name}` and "
                "give its --out folder"
                + (", or an SDXL inpainting checkpoint" if settings.task == "inpaint" else "")
            )
        return denoiser
    raise WdiffError(
        f"--model {name}: not a model; use builtin, a `wdiff finetune` run folder or model "
        "file, or a diffusers SDXL folder"
    )


def _task(settings: RestoreSettings):
    from wdiff.tasks import Inpainting, SuperResolution

    return SuperResolution(settings.scale) if settings.task == "sr" else Inpainting()


class _Motions:
    """Motion of each frame pair on the output grid, from the input's flows (upscaled for SR),
    and the chained flow from frame 0 for the report. The sampler and the report ask for the
    same pair one after the other, so the last one is kept."""

    def __init__(self, field, factor: int, device):
        self.field, self.factor, self.device = field, factor, device
        self.first = None
        self._last: tuple[int, Motion] | None = None

    def pixel(self, index: int) -> Motion:
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        pair = slice(index - 1, index)
        parts = []
        for flow, valid in (
            (self.field.backward, self.field.valid_backward),
            (self.field.forward, self.field.valid_forward),
        ):
            parts += upscale_flow(flow[pair].float(), valid[pair], self.factor)
        motion = Motion(*(t.to(self.device) for t in parts))
        self._last = (index, motion)
        return motion

    def chained(self, pixel_motion: Motion) -> tuple[torch.Tensor, torch.Tensor]:
        if self.first is None:
            self.first = (pixel_motion.forward, pixel_motion.valid_forward)
        else:
            flow, valid = self.first
            self.first = (
                chain(flow, pixel_motion.forward),
                chain_valid(flow, valid, pixel_motion.valid_forward),
            )
        return self.first


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
) -> dict:
    """Restore every frame of ``reader`` into ``output`` (fps and audio kept) and return the
    report (also written as ``OUT.report.json`` and ``OUT.frames.csv`` by the caller).

    ``advance(n)`` is called as frames are written, ``on_step(k)`` after each diffusion step
    of a frame (warped method). ``run_state`` (a ``resume.RunState``) records every finished
    frame and the state after it (batch-consistent: after each window); when it holds an
    interrupted run's state, that run continues.

    ``settings.tile`` "auto": frames are tiled at the model's ``max_tile`` when they exceed it;
    with the warped method, when sampling a frame runs out of memory the tile is halved and the
    frame redone from its start (``tiling.auto_tile``); once it is done, ``on_tile(frame, old,
    new)`` is told (output pixels per tile side, 0 = whole frames). Each report row records
    its frame's tile; the resume state records the current one, so a resumed run keeps it.
    """
    from wdiff.diffusion import (
        BatchConsistentSettings,
        GuidanceSettings,
        Window,
        sample_batch_consistent,
    )
    from wdiff.diffusion.video import VideoSampler
    from wdiff.metrics import warping_error
    from wdiff.noise import make_warper
    from wdiff.video import VideoWriter, frames_to_tensor, tensor_to_frames

    stage_seconds = stage_seconds if stage_seconds is not None else {}
    if denoiser is None:
        began = time.perf_counter()
        denoiser = load_denoiser(settings, device)
        stage_seconds["load_model"] = time.perf_counter() - began
    task = _task(settings)
    info = reader.info
    factor = settings.scale if settings.task == "sr" else 1
    width, height = info.width * factor, info.height * factor
    if width % denoiser.scale or height % denoiser.scale:
        raise WdiffError(f"output size {width}x{height} must be a multiple of {denoiser.scale}")
    shape = (1, denoiser.channels, height // denoiser.scale, width // denoiser.scale)
    grid = shape[-2:]
    auto = settings.tile == "auto"
    overlap = max(2, settings.tile_overlap // denoiser.scale)
    if auto:
        tile = auto_tile(grid, getattr(denoiser, "max_tile", None), overlap, denoiser.scale)
    else:
        tile = settings.tile // denoiser.scale
        if settings.tile and tile < 4:
            raise WdiffError(
                f"--tile {settings.tile}: this model needs tiles of at least "
                f"{4 * denoiser.scale} px"
            )
    motions = _Motions(field, factor, device)
    mask_frames = list(masks.frames()) if masks is not None else None
    sigmas = denoiser.sigmas(settings.steps)

    def condition(index: int, frame: np.ndarray):
        tensor = frames_to_tensor(frame).to(device)
        mask = None
        if mask_frames is not None:
            mask = torch.from_numpy(np.asarray(mask_frames[index]))[None, None].bool().to(device)
        return denoiser.condition(task, tensor, mask, settings.prompt), tensor, mask

    def warped_frames() -> Iterator[tuple[torch.Tensor, dict | None, torch.Tensor]]:
        nonlocal tile  # lowered when a frame runs out of memory (--tile auto)
        guidance = GuidanceSettings(
            strength=settings.guidance,
            fraction=settings.guidance_fraction,
            mode=settings.guidance_mode,
            first_strength=settings.first_guidance,
        )

        def new_sampler(before: dict | None) -> VideoSampler:
            """A sampler at the state ``before`` (None: frame 0) with the current tile size;
            a fresh warper too, as a resumed run has, so a redone frame equals a first try."""
            warper = make_warper(
                settings.noise,
                **({"extend": True} if settings.gp_extend and settings.noise == "gp" else {}),
            )
            sampler = VideoSampler(
                tiled(denoiser, tile, overlap, grid),
                warper,
                shape,
                sigmas,
                settings.seed,
                guidance,
                settings.solver,
                device,
            )
            if before is not None:
                sampler.load_state_tensors(before)
            return sampler

        before = None
        if resumed is not None:
            before = {k[8:]: v for k, v in resumed.items() if k.startswith("sampler.")}
        sampler = new_sampler(before)
        keep_state = auto or run_state is not None
        for index, frame in enumerate(reader.frames(start=start), start=start):
            cond, _, _ = condition(index, frame)
            motion = None if index == 0 else motions.pixel(index).to_grid(denoiser.scale)
            lowered_from = None  # the tile this frame first tried, if it had to lower it
            while True:
                try:
                    result = sampler.step(cond, motion, on_step)
                    break
                except RuntimeError as error:  # torch.OutOfMemoryError is one
                    if not (auto and is_out_of_memory(error)):
                        raise
                    message = str(error).splitlines()[0]
                # out of the handler, the traceback (and the tensors it holds) is gone
                sampler = None
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                lowered_from = tile if lowered_from is None else lowered_from
                try:
                    tile = auto_tile(grid, None, overlap, denoiser.scale, tile)
                except TilesExhausted as exhausted:
                    raise TilesExhausted(message, exhausted.pixels) from None
                sampler = new_sampler(before)  # the frame again, from its start
            if lowered_from is not None and on_tile is not None:
                on_tile(index, _pixels(lowered_from, grid, denoiser.scale), tile * denoiser.scale)
            before = sampler.state_tensors() if keep_state else None
            with torch.no_grad():
                yield denoiser.decode(result.x0).float(), before, result.x0

    def consistent_frames(start: int) -> Iterator[torch.Tensor]:
        def windows():  # independent windows: a resumed run starts at a window's first frame
            frames = reader.frames(start)
            index = start
            while True:
                chunk = [frame for _, frame in zip(range(settings.window), frames, strict=False)]
                if not chunk:
                    return
                conds, observed, holes = zip(
                    *(condition(index + k, f) for k, f in enumerate(chunk)), strict=True
                )
                observed = torch.cat(observed)
                if settings.task == "sr":
                    operator = task.operator()
                else:
                    hole = torch.cat(holes)
                    operator, observed = task.operator(hole), task.degrade(observed, hole)
                yield Window(torch.cat(conds), len(chunk), operator, observed)
                index += len(chunk)

        batch = BatchConsistentSettings(settings.window, settings.cg_steps, settings.eta)
        model = tiled(denoiser, tile, overlap, grid)  # --tile auto: the model's size only
        for frame in sample_batch_consistent(
            model, windows(), shape[1:], sigmas, settings.seed, batch, device
        ):
            with torch.no_grad():
                yield denoiser.decode(frame).float(), None, frame

    rows, previous, first, start, resumed = [], None, None, 0, None
    if run_state is not None and run_state.exists():
        start, resumed, rows = run_state.load()
        previous, first = resumed.get("report.previous"), resumed.get("report.first")
        previous, first = (t.to(device) if t is not None else None for t in (previous, first))
        if auto and "tiling.tile" in resumed:  # the size the interrupted run settled on
            tile = int(resumed["tiling.tile"])
        if "report.chained_flow" in resumed:
            motions.first = (
                resumed["report.chained_flow"].to(device),
                resumed["report.chained_valid"].to(device),
            )
    in_latents = denoiser.space == "latent"  # errors also in the working space (issue #7)
    latents = [None, None]  # previous, first
    if resumed is not None and in_latents:
        latents = [
            resumed["report.previous_latent"].to(device),
            resumed["report.first_latent"].to(device),
        ]
    frames = warped_frames() if settings.method == "warped" else consistent_frames(start)
    began = time.perf_counter()
    with VideoWriter(output, info.fps, crf=settings.crf, audio_from=info) as writer:
        if start:
            for frame in run_state.frames(start):
                writer.write(frame)
            if advance:
                advance(start)
        for index, (pixels, sampler_state, latent) in enumerate(frames, start=start):
            pixels = pixels.clamp(-1, 1)
            row = {
                "frame": index,
                "tile": _pixels(tile, grid, denoiser.scale),
                "seconds": 0.0,
                "warping_error_previous": None,
                "warping_error_first": None,
            }
            if in_latents:
                row |= {"latent_warping_error_previous": None, "latent_warping_error_first": None}
                latent = latent.detach().float()
            unit = (pixels + 1) / 2  # errors in [0, 1] units, as `wdiff eval` gives them
            if index > 0:
                motion = motions.pixel(index)
                row["warping_error_previous"] = float(
                    warping_error(unit, previous, motion.forward, motion.valid_forward)[0]
                )
                flow, valid = motions.chained(motion)
                row["warping_error_first"] = float(warping_error(unit, first, flow, valid)[0])
                if in_latents:
                    latent_motion = motion.to_grid(denoiser.scale)
                    row["latent_warping_error_previous"] = float(
                        warping_error(
                            latent, latents[0], latent_motion.forward, latent_motion.valid_forward
                        )[0]
                    )
                    coarse, coarse_valid = resize_to_grid(flow, valid, denoiser.scale)
                    row["latent_warping_error_first"] = float(
                        warping_error(latent, latents[1], coarse, coarse_valid)[0]
                    )
            else:
                first = unit
                if in_latents:
                    latents[1] = latent
            if in_latents:
                latents[0] = latent
            encoded = tensor_to_frames(pixels.cpu())
            writer.write(encoded)
            previous = unit
            now = time.perf_counter()
            row["seconds"] = round(now - began, 3)
            began = now
            rows.append(row)
            # batch-consistent windows are independent: the state is kept at their ends only
            window_open = settings.method != "warped" and (index + 1) % settings.window != 0
            if run_state is not None and window_open and index + 1 < info.frame_count:
                run_state.save_frame(index, encoded[0])
            elif run_state is not None:
                state = {f"sampler.{k}": v for k, v in (sampler_state or {}).items()}
                state |= {"report.previous": previous, "report.first": first}
                state["tiling.tile"] = torch.tensor(tile)
                if in_latents:
                    state |= {
                        "report.previous_latent": latents[0],
                        "report.first_latent": latents[1],
                    }
                if motions.first is not None:
                    state["report.chained_flow"] = motions.first[0]
                    state["report.chained_valid"] = motions.first[1]
                run_state.save(index, encoded[0], state, rows)
            if advance:
                advance(1)
    stage_seconds["sample_and_write"] = sum(r["seconds"] for r in rows)
    report = summarise(settings, rows, stage_seconds, device, info, output, (width, height))
    report["tiling"] = {
        "tile": settings.tile,
        "tile_used": rows[-1]["tile"] if rows else 0,
        "overlap_used": tile_overlap(tile, overlap) * denoiser.scale,
    }
    return report


def _pixels(tile: int, grid: tuple[int, int], scale: int) -> int:
    """Output pixels per side of ``tile`` cells; 0 (whole frames) when the frame fits in one."""
    return tile_in_use(tile, grid) * scale


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarise(settings, rows, stage_seconds, device, info, output, size) -> dict:
    import diffusers

    import wdiff

    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    peak = {"cpu_max_rss_gib": round(peak_rss, 3)}
    if device.type == "cuda":
        peak["cuda_max_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    return {
        "output": str(output),
        "settings": asdict(settings),
        "versions": {
            "wdiff": wdiff.__version__,
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "python": platform.python_version(),
        },
        "device": str(device),
        "input": {
            "width": info.width,
            "height": info.height,
            "frames": info.frame_count,
            "fps": str(info.fps),
        },
        "output_size": {"width": size[0], "height": size[1]},
        "seconds": {k: round(v, 2) for k, v in stage_seconds.items()},
        "seconds_per_frame": round(_mean([r["seconds"] for r in rows]) or 0.0, 3),
        "peak_memory": peak,
        "mean_warping_error_previous": _mean([r["warping_error_previous"] for r in rows]),
        "mean_warping_error_first": _mean([r["warping_error_first"] for r in rows]),
        "mean_latent_warping_error_previous": _mean(
            [r.get("latent_warping_error_previous") for r in rows]
        ),
        "mean_latent_warping_error_first": _mean(
            [r.get("latent_warping_error_first") for r in rows]
        ),
        "frames": rows,
    }


def report_paths(output: Path) -> tuple[Path, Path]:
    """``OUT.report.json`` and ``OUT.frames.csv`` beside the output ``OUT.mp4`` (or folder)."""
    output = Path(output)
    base = output.with_suffix("") if output.suffix else output
    return base.parent / f"{base.name}.report.json", base.parent / f"{base.name}.frames.csv"


def write_report(report: dict, output: Path) -> tuple[Path, Path]:
    """``OUT.report.json`` and ``OUT.frames.csv`` beside the output (atomically)."""
    from wdiff.outputs import atomic_output

    json_path, csv_path = report_paths(output)
    with atomic_output(json_path) as temporary:
        temporary.write_text(json.dumps(report, indent=2) + "\n")
    with atomic_output(csv_path) as temporary, temporary.open("w", newline="") as handle:
        columns = dict.fromkeys(key for row in report["frames"] for key in row)
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(report["frames"])
    return json_path, csv_path
