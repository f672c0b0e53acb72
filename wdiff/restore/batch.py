"""Many videos in one command (``wdiff upscale a.mp4 b.mp4 clips/ -o out/``).

``plan_batch`` expands the inputs (a folder holding video files stands for those videos; a
folder of PNG/JPG frames stays one video), pairs each with its mask (one for all, one per input
in order, or a folder of masks named after the inputs), and plans each with ``plan_restore``,
its output named as a single input's would be, in ``folder`` when one is given. ``run_batch``
runs the entries it is given, one after another, through ``run_restore``: each has its own
report and resume state; a failing input is recorded and the next one runs.

    entries = plan_batch("sr", ["a.mp4", "clips/"], Path("out"), given={"scale": 4})
    outcomes = run_batch(entries, "cuda")

``processes.Processes`` says which entries a process runs under ``accelerate launch``.
"""

from __future__ import annotations

import json
import re
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from wdiff.config import merge_settings
from wdiff.errors import Interrupted, WdiffError
from wdiff.feedback import SILENT, Feedback
from wdiff.restore.job import RestoreJob, RestoreResult, plan_restore, run_restore
from wdiff.restore.models import LoadedDenoisers
from wdiff.restore.report import report_paths
from wdiff.resume import resume_folder
from wdiff.video import CONTAINERS, resolve_input

VIDEO_SUFFIXES = (*CONTAINERS, ".avi", ".webm", ".m4v")
# a wdiff result's name after its input's stem: a.x4-warped-gp.mp4, a.inpainted-warped-gp.mp4
_RESULT_NAME = r"\.(x\d+|inpainted)-.+"


@dataclass
class BatchEntry:
    """One input of a batch: its job, or why it could not be planned (one line)."""

    source: str
    job: RestoreJob | None
    error: str | None = None


@dataclass
class Outcome:
    """What became of entry ``index``: ``status`` "done", "skipped" (its output was complete)
    or "failed" (``reason``, one line; ``internal`` for a bug, with its ``trace``)."""

    index: int
    source: str
    output: Path | None
    status: str
    frames: int | None = None
    seconds: float | None = None
    reason: str | None = None
    result: RestoreResult | None = None
    internal: bool = False
    trace: str | None = None


def is_video_folder(path: Path) -> bool:
    """A folder holding video files (a folder of frames holds none)."""
    return path.is_dir() and bool(_videos_in(path))


def folder_videos(folder: Path) -> list[Path]:
    """The video files in ``folder`` in natural order (clip2 before clip10), not hidden ones nor
    those named like a wdiff result of another video there (a.x4-warped-gp.mp4 beside a.mp4)."""
    videos = _videos_in(folder)
    stems = {video.stem for video in videos}

    def is_result(video: Path) -> bool:
        return any(re.fullmatch(re.escape(stem) + _RESULT_NAME, video.stem) for stem in stems)

    return sorted((video for video in videos if not is_result(video)), key=_natural_key)


def expand_inputs(specs: Sequence[str]) -> list[str]:
    """Each spec as given, a folder of video files replaced by its videos (``folder_videos``)."""
    found: list[str] = []
    for spec in specs:
        path = Path(spec)
        if is_video_folder(path):
            videos = folder_videos(path)
            if not videos:
                raise WdiffError(f"{path}: holds only wdiff results; nothing to restore")
            found += [str(video) for video in videos]
        else:
            found.append(spec)
    return found


def pair_masks(sources: Sequence[str], masks: Sequence[str]) -> list[str | WdiffError | None]:
    """Each source's mask: none; ``masks`` in order when there is one per source; or the one
    mask for all, unless it is a folder holding masks named after the sources (``a.mp4``,
    ``a.png`` or a frame folder ``a/`` for ``clips/a.mp4``): then each its own, and a source
    without one gets the error to report."""
    if not masks:
        return [None] * len(sources)
    if len(masks) == len(sources) and len(masks) > 1:
        return list(masks)
    if len(masks) != 1:
        raise WdiffError(
            f"--mask given {len(masks)} times for {len(sources)} "
            f"input{'s' if len(sources) > 1 else ''}; give one mask for all, "
            "one per input in order, or a folder of masks named after the inputs"
        )
    by_name = _masks_by_name(Path(masks[0]), sources)
    return by_name if by_name is not None else [masks[0]] * len(sources)


def _masks_by_name(folder: Path, sources: Sequence[str]) -> list[str | WdiffError] | None:
    """Masks in ``folder`` named after the sources' stems; None when no name matches."""
    if not folder.is_dir():
        return None
    named: dict[str, list[Path]] = {}
    for entry in folder.iterdir():
        if not entry.name.startswith("."):
            named.setdefault(entry.stem if entry.is_file() else entry.name, []).append(entry)
    stems = [_stem(source) for source in sources]
    if not any(stem in named for stem in stems):
        return None
    paired: list[str | WdiffError] = []
    for source, stem in zip(sources, stems, strict=True):
        found = sorted(named.get(stem, []))
        if len(found) == 1:
            paired.append(str(found[0]))
        elif not found:
            paired.append(
                WdiffError(f"{source}: no mask named {stem} (.mp4, .png, folder) in {folder}")
            )
        else:
            names = ", ".join(path.name for path in found)
            paired.append(WdiffError(f"{source}: several masks named {stem} in {folder}: {names}"))
    return paired


def check_output_folder(folder: Path) -> Path:
    """``-o`` of several inputs: a folder, existing or to be made (``make_output_folder``)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise WdiffError(
            f"{folder}: is a file; with several inputs -o names a folder for their outputs"
        )
    if not folder.exists() and folder.suffix.lower() in (*VIDEO_SUFFIXES, ".png", ".jpg"):
        raise WdiffError(
            f"{folder}: with several inputs -o names a folder for their outputs, not a file"
        )
    return folder


def make_output_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WdiffError(f"{folder}: could not make the output folder ({error.strerror})") from None


def plan_batch(
    task: str,
    specs: Sequence[str],
    folder: Path | None = None,
    masks: Sequence[str] = (),
    **plan,
) -> list[BatchEntry]:
    """Plan every input (``plan_restore``'s keyword arguments in ``plan``; outputs into
    ``folder``, else beside each input). Settings that cannot run, or two inputs that would
    write the same output, raise at once; an input without its mask becomes an entry with an
    ``error``."""
    merge_settings(task, plan.get("preset"), plan.get("given", {}) | {"seed": plan.get("seed", 0)})
    sources = expand_inputs(specs)
    entries = []
    for source, mask in zip(sources, pair_masks(sources, masks), strict=True):
        if isinstance(mask, WdiffError):
            entries.append(BatchEntry(source, None, str(mask)))
            continue
        try:
            job = plan_restore(task, source, None, mask=mask, **plan)
        except WdiffError as error:
            entries.append(BatchEntry(source, None, " ".join(str(error).split())))
            continue
        if folder is not None:
            job = replace(job, output=Path(folder) / job.output.name)
        entries.append(BatchEntry(source, job))
    _check_distinct(entries)
    return entries


def _check_distinct(entries: list[BatchEntry]) -> None:
    written: dict[Path, str] = {}
    for entry in entries:
        if entry.job is None:
            continue
        output = entry.job.output.resolve()
        if output in written:
            raise WdiffError(
                f"{written[output]} and {entry.source} would both be written to "
                f"{entry.job.output}; give each input once, or run them into different folders"
            )
        written[output] = entry.source


def run_batch(
    entries: Sequence[BatchEntry],
    device: torch.device | str = "cpu",
    feedback: Feedback = SILENT,
    indices: Sequence[int] | None = None,
) -> list[Outcome]:
    """Run ``entries[i]`` for each i in ``indices`` (default all), in order; an output already
    complete under ``--resume`` is skipped. Ctrl-C (``Interrupted``) stops the batch."""
    outcomes = []
    denoisers = LoadedDenoisers()  # one model load for the inputs that share it
    for index in range(len(entries)) if indices is None else indices:
        entry = entries[index]
        job = entry.job
        if job is not None:
            feedback.note(f"[{index + 1}/{len(entries)}] {entry.source} -> {job.output}")
        outcomes.append(_run_one(index, entry, device, feedback, denoisers))
    return outcomes


def _run_one(
    index: int, entry: BatchEntry, device, feedback: Feedback, denoisers: LoadedDenoisers
) -> Outcome:
    job = entry.job
    if job is None:
        return Outcome(index, entry.source, None, "failed", reason=entry.error)
    done = _complete(job)
    if done is not None:
        frames = done.report.get("input", {}).get("frames")
        return Outcome(
            index, entry.source, job.output, "skipped", frames, reason="complete", result=done
        )
    began = time.perf_counter()
    try:
        result = run_restore(job, device, feedback, denoisers)
    except WdiffError as error:
        reason = " ".join(str(error).split())
        return Outcome(index, entry.source, job.output, "failed", reason=reason)
    except Interrupted:  # Ctrl-C stops the batch, not just this input
        raise
    except Exception as error:  # a bug: the other inputs still run
        reason = f"internal error: {type(error).__name__}: {' '.join(str(error).split())}"
        return Outcome(
            index,
            entry.source,
            job.output,
            "failed",
            reason=reason,
            internal=True,
            trace=traceback.format_exc(),
        )
    seconds = time.perf_counter() - began
    frames = result.report["input"]["frames"]
    return Outcome(index, entry.source, job.output, "done", frames, seconds, None, result)


def _complete(job: RestoreJob) -> RestoreResult | None:
    """Under ``--resume``, a finished earlier run's result: output and report there, no state."""
    report_path = report_paths(job.output)[0]
    finished = job.output.exists() and report_path.is_file()
    if not job.resume or job.overwrite or not finished or resume_folder(job.output).exists():
        return None
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        return None
    return RestoreResult(job.output, report, report_path)


def _stem(source: str) -> str:
    try:
        path = resolve_input(source)
    except WdiffError:  # an unknown builtin: name; its plan says so
        return source
    return path.name if path.is_dir() else path.stem


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _videos_in(folder: Path) -> list[Path]:
    return [
        path
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith(".")
        and path.suffix.lower() in VIDEO_SUFFIXES
    ]
