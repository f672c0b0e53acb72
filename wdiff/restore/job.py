"""Restoring one video file (what ``wdiff upscale`` and ``wdiff inpaint`` do).

``plan_restore`` merges the settings (defaults < preset < ``given``), resolves the input and
names the output; ``run_restore`` checks the outputs, keeps a resume state beside the output,
loads the model, gets the flows, samples every frame and writes the video and its report:

    job = plan_restore("sr", "low.mp4", given={"scale": 4, "steps": 10})
    result = run_restore(job, device="cuda")
    print(result.output, result.report["seconds_per_frame"])

Progress and warnings go to ``feedback`` (silent by default). Problems the user can fix (out of
memory included) raise ``WdiffError``; Ctrl-C raises ``Interrupted`` saying what is kept.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from wdiff import __version__, interrupts
from wdiff.config import RestoreSettings, merge_settings, settings_yaml
from wdiff.errors import DiskFull, Interrupted, WdiffError
from wdiff.feedback import SILENT, Feedback
from wdiff.flow import FlowField, FlowOptions, TensorCache, complete_field, video_flows
from wdiff.flow.cache import content_digest
from wdiff.locks import output_locks
from wdiff.outputs import check_output, default_output
from wdiff.restore import models  # models.load_denoiser looked up at each run (tests wrap it)
from wdiff.restore.loop import restore
from wdiff.restore.preview import check_preview_path, preview_path
from wdiff.restore.report import report_paths, write_report
from wdiff.resume import RunState, remove_stale_partials
from wdiff.video import (
    IMAGE_SUFFIXES,
    MaskReader,
    VideoInfo,
    VideoReader,
    VideoWriter,
    check_video_output,
    open_video,
    resolve_input,
)


@dataclass
class RestoreJob:
    """One restoration as ``plan_restore`` makes it; nothing is checked or opened yet.

    ``cache_dir`` None is the default flow cache; ``use_cache`` False neither reads nor writes
    it. ``resume`` continues an interrupted run of the same settings and inputs; ``overwrite``
    replaces existing outputs (and an interrupted run's state)."""

    settings: RestoreSettings
    source: Path
    output: Path
    mask: Path | None = None
    preset: str | None = None
    fps: float | None = None
    raft_weights: Path | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    resume: bool = False
    overwrite: bool = False
    command_line: list[str] | None = None  # the CLI's arguments, for the report (None: Python)
    preview: Path | None = None  # inpainting: the masked input beside the output, written here

    @property
    def inputs(self) -> list[Path]:
        return [self.source] + ([self.mask] if self.mask else [])

    def config_yaml(self) -> str:
        """The settings and paths as YAML (``--print-config``)."""
        extra = {"input": str(self.source), "output": str(self.output)}
        mask = {"mask": str(self.mask)} if self.mask else {}
        preview = {"preview": str(self.preview)} if self.preview else {}
        return settings_yaml(self.settings, self.preset, extra | mask | preview)


@dataclass
class RestoreResult:
    """The video written, its report (``restore``'s) and the report's JSON file; the preview
    when one was asked for."""

    output: Path
    report: dict
    report_path: Path
    preview: Path | None = None


def plan_restore(
    task: str,
    input: str | Path,
    output: Path | None = None,
    *,
    mask: str | Path | None = None,
    preset: str | None = None,
    given: dict | None = None,
    seed: int = 0,
    fps: float | None = None,
    raft_weights: Path | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    command_line: list[str] | None = None,
    preview: bool | str | Path = False,
) -> RestoreJob:
    """Plan restoring ``input`` (a file, a frame folder at ``fps``, or ``builtin:bunny``) for
    ``task`` ("sr" or "inpaint", with a ``mask``: white = fill). ``given`` holds
    ``RestoreSettings`` fields that override ``preset``. ``output`` defaults to
    ``INPUT.xSCALE-SAMPLER-NOISE.mp4`` or ``INPUT.inpainted-SAMPLER-NOISE.mp4`` beside the input
    (``.png`` for a still image). ``command_line`` (the arguments of the command that asked
    for it; None from Python) is recorded in the report. ``preview`` (inpainting): True writes
    ``OUT.preview.mp4`` beside the output, a path writes it there (``restore.preview``)."""
    settings = merge_settings(task, preset, (given or {}) | {"seed": seed})
    source = resolve_input(input)
    mask_path = resolve_input(mask) if mask else None
    kind = ".png" if source.suffix.lower() in IMAGE_SUFFIXES else ".mp4"  # an image gives one
    if settings.task == "sr":
        suffix = f".x{settings.scale}-{settings.sampler}-{settings.noise}{kind}"
    else:
        suffix = f".inpainted-{settings.sampler}-{settings.noise}{kind}"
    output = output or default_output(source, suffix)
    if preview is not False and preview is not None and settings.task != "inpaint":
        raise WdiffError("--preview shows the inpainting mask: it is for wdiff inpaint")
    if preview is True:
        preview = preview_path(output)
    return RestoreJob(
        settings,
        source,
        output,
        mask=mask_path,
        preset=preset,
        fps=fps,
        raft_weights=raft_weights,
        cache_dir=cache_dir,
        use_cache=use_cache,
        resume=resume,
        overwrite=overwrite,
        command_line=command_line,
        preview=Path(preview) if preview else None,
    )


def run_restore(
    job: RestoreJob,
    device: torch.device | str = "cpu",
    feedback: Feedback = SILENT,
    denoisers: models.LoadedDenoisers | None = None,
) -> RestoreResult:
    """Restore ``job`` on ``device``; the report also goes to ``OUT.report.json`` and
    ``OUT.frames.csv``. The resume state ``.OUT.resume/`` is removed once the run is done.
    ``denoisers``: where a batch keeps the model loaded for its next input."""
    check_video_output(job.output)
    for path in (job.output, *report_paths(job.output)):
        check_output(path, job.inputs, job.overwrite)
    if job.preview is not None:
        _check_preview(job)
    # one run per output (and its resume state), and per preview
    with output_locks([job.output, job.preview], feedback.note):
        return _run_locked(job, torch.device(device), feedback, denoisers)


def _check_preview(job: RestoreJob) -> None:
    """The preview is a video file of its own, written where the output may be."""
    preview = job.preview
    check_preview_path(preview)
    taken = {
        path.resolve(): what
        for what, path in (("the input", job.source), ("the mask", job.mask))
        if path is not None
    }
    taken[job.output.resolve()] = "the output"
    taken |= {path.resolve(): "the output's report" for path in report_paths(job.output)}
    if preview.resolve() in taken:
        raise WdiffError(
            f"--preview-output {preview}: is {taken[preview.resolve()]}; choose another path"
        )
    check_output(preview, job.inputs, job.overwrite)


def _check_encoding(output: Path, info: VideoInfo, settings: RestoreSettings) -> None:
    """Refuse before any work an encoder or pixel format that cannot store the output's size
    (an odd size with subsampled chroma): the writer's own choice, made now instead of at the
    first frame (the writer does no I/O before it is entered)."""
    factor = settings.scale if settings.task == "sr" else 1
    writer = VideoWriter(
        output, info.fps, source=info, codec=settings.codec, pix_fmt=settings.pix_fmt
    )
    writer.bit_depth((info.width * factor, info.height * factor))


def _run_locked(
    job: RestoreJob,
    device: torch.device,
    feedback: Feedback,
    denoisers: models.LoadedDenoisers | None = None,
) -> RestoreResult:
    settings, output = job.settings, job.output
    reader = open_video(job.source, fps=job.fps)
    check_video_output(output, reader.info.frame_count)
    _check_encoding(output, reader.info, settings)
    masks = MaskReader(job.mask, reader.info, settings.mask_dilate) if job.mask else None
    run_state = _run_state(job, feedback)
    flow = FlowOptions(
        settings.flow,
        raft_model=settings.raft_model,
        raft_weights=job.raft_weights,
        cache_dir=job.cache_dir,
        use_cache=job.use_cache,
    )
    estimator = flow.estimator(device)
    cache = flow.cache()
    began = time.perf_counter()
    # before the long work: fails fast
    load = models.load_denoiser if denoisers is None else denoisers.get
    denoiser = load(settings, device)
    _check_prompt(settings, denoiser, feedback)
    stages = {"load_model": time.perf_counter() - began}
    began = time.perf_counter()
    name = job.source.name  # progress lines name the input: batch logs interleave several
    field = _flows(reader, masks, estimator, cache, settings.flow, name, feedback)
    stages["flow"] = time.perf_counter() - began
    label = f"upscale x{settings.scale}" if settings.task == "sr" else "inpaint"
    bars = feedback.frame_bars(f"{name}: {label} (frames)", reader.info.frame_count, settings.steps)
    written: list[Path] = []  # the report, written before the video is renamed into place

    def write(report: dict) -> None:
        written.extend(write_report(report, output))
        if job.preview is not None:  # renamed into place next, just before the output
            written.append(job.preview)

    with (
        bars as (advance, on_step),
        interrupts.at_steps() as check,  # the CLI's Ctrl-C stops after a step or a frame
        _memory_advice(settings, reader.info),
        _resume_hint(run_state),
        _removed_unless_done(written),
    ):
        report = restore(
            reader,
            field,
            output,
            settings,
            device,
            masks,
            interrupts.then_check(advance, check),
            stages,
            denoiser,
            run_state,
            interrupts.then_check(on_step, check),
            _tile_warning(feedback.warn),
            on_report=write,
            warn=feedback.warn,
            preset=job.preset,
            command_line=job.command_line,
            preview=job.preview,
        )
    run_state.remove()
    return RestoreResult(output, report, written[0], job.preview)


def _run_state(job: RestoreJob, feedback: Feedback) -> RunState:
    """The resume state of this output, after checking what is already there."""
    output = job.output
    fingerprint = {
        "settings": job.settings.to_dict(),
        "inputs": [content_digest(path) if path.is_file() else str(path) for path in job.inputs],
        "version": __version__,
    }
    state = RunState(output, fingerprint)
    if state.exists() and not job.resume:
        if not job.overwrite:
            raise WdiffError(
                f"{output}: an interrupted run left its state in {state.folder}; add --resume to "
                "continue it or --overwrite to start over"
            )
        state.remove()
    if job.resume and not state.exists():
        feedback.note(f"{output}: no interrupted run to resume; starting from the first frame")
    remove_stale_partials(output)
    return state


def _check_prompt(settings: RestoreSettings, denoiser, feedback: Feedback) -> None:
    if settings.prompt and not getattr(denoiser, "takes_prompt", False):
        name = "the built-in model" if settings.model == "builtin" else settings.model
        feedback.warn(f"--prompt is ignored: {name} is not text-conditioned (use an SDXL --model)")


def _flows(
    reader: VideoReader,
    masks: MaskReader | None,
    estimator,
    cache: TensorCache,
    label: str,
    name: str,
    feedback: Feedback,
) -> FlowField | None:
    """The input's flows, completed inside the masks; None for a single frame (a still)."""
    if reader.info.frame_count <= 1:
        return None
    field, _ = video_flows(reader, estimator, cache, label, feedback, name)
    if masks is not None:
        field = complete_field(field, masks.frames())
    return field


@contextlib.contextmanager
def _removed_unless_done(paths: list[Path]) -> Iterator[None]:
    """Remove ``paths`` (the report) when the block fails: no report without its video."""
    try:
        yield
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _resume_hint(run_state: RunState) -> Iterator[None]:
    """Ctrl-C -> ``Interrupted`` saying how many frames are kept and how to continue; a full
    disk -> its one line, with how to continue."""
    try:
        yield
    except DiskFull as error:
        done = run_state.frames_done()
        if not done:
            raise
        kept = f"{done} finished frame{'s' if done > 1 else ''}"
        advice = f"free some space there and rerun with --resume (it keeps {kept})"
        raise DiskFull(error.path, error.reason, f"{advice}, or choose another -o") from error
    except KeyboardInterrupt:
        done = run_state.frames_done()
        if not done:
            raise Interrupted("no frame was finished; no output was written") from None
        raise Interrupted(
            f"{done} finished frame{'s' if done > 1 else ''} kept in {run_state.folder}; "
            "rerun the same command with --resume to continue"
        ) from None


@contextlib.contextmanager
def _memory_advice(settings: RestoreSettings, info: VideoInfo) -> Iterator[None]:
    """Out of memory -> a ``WdiffError`` naming what to try (the partial output is removed, the
    resume state kept)."""
    from wdiff.diffusion.tiling import TilesExhausted, is_out_of_memory

    try:
        yield
    except RuntimeError as error:  # torch.OutOfMemoryError, a CPU allocation failure, ...
        if not (isinstance(error, TilesExhausted) or is_out_of_memory(error)):
            raise
        factor = settings.scale if settings.task == "sr" else 1
        size = f"{info.width * factor}x{info.height * factor}"
        tried = ""
        tips = "--tile 512, --dtype fp16, --vae-tiling, --vae-slicing, --cpu-offload"
        if isinstance(error, TilesExhausted):
            tried = f" even in --tile auto's smallest tiles ({error.pixels} px)"
            tips = "--dtype fp16, --cpu-offload, a fixed --tile below that with less --tile-overlap"
        if settings.guidance_mode == "full" and settings.guidance > 0:
            tips = "--guidance-mode cheap (no backpropagation), " + tips
        raise WdiffError(
            f"out of memory sampling {size} frames on {_device_name(error)}{tried}; try "
            f"{tips}, a smaller --scale or --device cpu, then --resume"
        ) from error


def _device_name(error: Exception) -> str:
    return "the GPU" if "CUDA" in str(error) or "cuda" in str(error) else "this device"


def _tile_warning(warn: Callable[[str], None]) -> Callable[[int, int, int], None]:
    """``restore``'s ``on_tile``: a warning for each frame that ``--tile auto`` had to sample in
    smaller tiles than the frame before (normally once a run)."""

    def lowered(frame: int, old: int, new: int) -> None:
        was = f"{old} px tiles" if old else "whole frames"
        warn(
            f"out of memory at frame {frame} with {was}; sampling in {new} px tiles from that "
            f"frame on (--tile {new} starts there)"
        )

    return lowered
