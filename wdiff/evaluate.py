"""``wdiff eval``: temporal consistency and fidelity of restored videos, frame by frame.

Every output is read as a stream next to one set of flows (so outputs of the same clip are
compared on the same motion) and, if given, the reference (ground truth). Per frame ``t``:

- ``warp_prev``: Lai et al. 2018's warping error between frame t-1 and frame t warped back by
  the flow t-1 -> t, over cells the flow's forward-backward check keeps (MSE, [0, 1] RGB);
- ``warp_first``: the same between frame 0 and frame t, through the flows chained from frame 0;
- ``flicker``: mean ``|O_t - O_{t-1}|`` over static cells (valid, moving < 0.5 px);
- ``tof`` (with a reference): mean end-point distance between the flow estimated on the output's
  pair t-1, t and on the reference's;
- ``psnr``, ``ssim``, ``mse`` (with a reference), on [0, 1] RGB.

Flows come from ``--flows`` (a ``wdiff flow`` file), else are estimated on ``--flow-from`` (for
example the low-res input; they are rescaled to the output size), else on the reference, else on
the first output.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wdiff import metrics
from wdiff.errors import WdiffError
from wdiff.flow.field import FlowField
from wdiff.flow.ops import resize_flow
from wdiff.outputs import atomic_output
from wdiff.temporal import TemporalErrors
from wdiff.video import VideoReader, fps_text, frames_to_tensor

PER_FRAME = (
    "warp_prev",
    "warp_first",
    "flicker",
    "tof",
    "psnr",
    "ssim",
    "mse",
    "lpips",
    "clip_score",
    "latent_warp_prev",
    "latent_warp_first",
)
LABELS = {
    "warp_prev": "warping error to the previous frame",
    "warp_first": "warping error to the first frame",
    "flicker": "flicker (static cells)",
    "tof": "tOF (px)",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "mse": "MSE",
    "lpips": "LPIPS",
    "clip_score": "CLIP score",
    "fid": "FID (torchvision Inception)",
    "latent_warp_prev": "latent warping error, previous",
    "latent_warp_first": "latent warping error, first",
}
PSNR_CAP = metrics.PSNR_CAP  # dB, for frames identical to the reference
OPTIONAL_METRICS = {  # metric: what it needs, each thing with the option that gives it
    "lpips": {
        "reference": "--reference",
        "weights": "--lpips-weights (torchvision AlexNet weights; never downloaded)",
    },
    "fid": {
        "reference": "--reference",
        "weights": "--fid-weights (torchvision Inception-v3 weights; never downloaded)",
    },
    "clip_score": {"weights": "--clip-model (a local CLIP folder) and --prompt"},
}


@dataclass
class WeightedMetrics:
    """The metrics that need weights (``wdiff.perceptual``), each None when not asked for."""

    lpips: object | None = None
    inception: object | None = None
    clip: object | None = None
    latent_model: object | None = None  # a latent Denoiser: its encode() and scale


@dataclass
class VideoScores:
    """One evaluated video: its per-frame rows and their mean and std."""

    name: str
    path: str
    frames: int
    rows: list[dict] = field(default_factory=list)
    fid: float | None = None
    fps: str | None = None  # as ``video.fps_text`` writes it ("25/1")

    def summary(self) -> dict[str, dict[str, float | None]]:
        out = {} if self.fid is None else {"fid": {"mean": self.fid, "std": 0.0}}
        for key in PER_FRAME:
            values = [row[key] for row in self.rows if _number(row.get(key))]
            if values:
                out[key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        return out


def _number(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _unit(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    return ((frames_to_tensor(frame) + 1) / 2).to(device)


def check_matching(reader: VideoReader, frames: int, size: tuple[int, int], what: str) -> None:
    info = reader.info
    if info.frame_count != frames:
        raise WdiffError(
            f"{info.path}: has {info.frame_count} frames but {what} has {frames}; "
            "evaluate videos of the same clip"
        )
    if (info.width, info.height) != size:
        raise WdiffError(
            f"{info.path}: is {info.width}x{info.height} but {what} is {size[0]}x{size[1]}; "
            "evaluate videos of the same size"
        )


def score_video(
    reader: VideoReader,
    field: FlowField,
    reference: VideoReader | None = None,
    estimator=None,
    device: torch.device | str = "cpu",
    advance: Callable[[int], None] | None = None,
    weighted: WeightedMetrics | None = None,
) -> VideoScores:
    """Per-frame metrics of one video (see the module docstring). ``estimator`` (needed for tOF
    with a reference) maps uint8 ``(n, H, W, 3)`` pairs to flows ``(n, 2, H, W)``."""
    info = reader.info
    device = torch.device(device)
    weighted = weighted or WeightedMetrics()
    _check_inputs(reader, field, reference, weighted.latent_model)
    scores = VideoScores(info.path.stem, str(info.path), info.frame_count, fps=fps_text(info.fps))
    truths = reference.frames() if reference is not None else iter(())
    encoder = weighted.latent_model
    temporal = TemporalErrors(encoder.scale if encoder is not None else 1)
    features: tuple[list, list] = ([], [])
    previous_raw = previous_truth = None
    for index, raw in enumerate(reader.frames()):
        unit = _unit(raw, device)
        row: dict[str, float | int | None] = {"frame": index} | dict.fromkeys(PER_FRAME)
        truth_raw = next(truths, None)
        row |= _motion_scores(temporal, unit, field, index, encoder)
        if index > 0 and truth_raw is not None and estimator is not None:
            flow_out = estimator(previous_raw[None], raw[None]).to(device)
            flow_ref = estimator(previous_truth[None], truth_raw[None]).to(device)
            row["tof"] = float(metrics.tof(flow_out, flow_ref)[0])
        if weighted.clip is not None:
            row["clip_score"] = float(weighted.clip(unit.cpu())[0])
        if truth_raw is not None:
            row |= _reference_scores(unit, _unit(truth_raw, device), weighted, features)
        scores.rows.append({key: (None if _nan(v) else v) for key, v in row.items()})
        previous_raw, previous_truth = raw, truth_raw
        if advance:
            advance(1)
    if features[0]:
        from wdiff.perceptual import frechet_distance

        scores.fid = frechet_distance(torch.cat(features[0]), torch.cat(features[1]))
    if len(scores.rows) != info.frame_count:
        raise WdiffError(f"{info.path}: decoded {len(scores.rows)} of {info.frame_count} frames")
    return scores


def _check_inputs(reader: VideoReader, field: FlowField, reference, encoder) -> None:
    """Refuse a reference, flows or a latent model that do not fit the video."""
    info = reader.info
    if reference is not None:
        check_matching(reference, info.frame_count, (info.width, info.height), str(info.path))
    if field.pairs + 1 != info.frame_count:
        raise WdiffError(
            f"{info.path}: has {info.frame_count} frames but the flows cover "
            f"{field.pairs + 1}; give flows of the same clip (--flows or --flow-from)"
        )
    if encoder is not None and (info.width % encoder.scale or info.height % encoder.scale):
        raise WdiffError(
            f"{info.path}: {info.width}x{info.height} is not a multiple of the model's "
            f"{encoder.scale}-pixel latent cells; latent errors need whole cells"
        )


def _motion_scores(
    temporal: TemporalErrors, unit: torch.Tensor, field: FlowField, index: int, encoder
) -> dict[str, float | None]:
    """Warping errors (``temporal``) and flicker of frame ``index`` ([0, 1] RGB ``(1, 3, H, W)``),
    on ``field``'s flow from the previous frame rescaled to the frame's size."""
    previous = temporal.previous
    latent = encoder.encode(unit * 2 - 1).float() if encoder is not None else None
    if index == 0:
        temporal.add(unit, latent=latent)
        return {}
    pair = slice(index - 1, index)
    forward, valid = resize_flow(
        field.forward[pair].float().to(unit.device),
        field.valid_forward[pair].to(unit.device),
        (unit.shape[-1], unit.shape[-2]),
    )
    errors = temporal.add(unit, forward, valid, latent)
    scores = {
        "warp_prev": errors.previous,
        "warp_first": errors.first,
        "flicker": float(metrics.flicker(unit, previous, metrics.static_mask(forward, valid))[0]),
    }
    if latent is not None:
        scores |= {"latent_warp_prev": errors.latent_previous}
        scores |= {"latent_warp_first": errors.latent_first}
    return scores


def _reference_scores(
    unit: torch.Tensor, truth: torch.Tensor, weighted: WeightedMetrics, features: tuple[list, list]
) -> dict[str, float]:
    """MSE, PSNR, SSIM and (with their weights) LPIPS of a frame against the reference's; the
    Inception features of both go into ``features`` for FID."""
    scores = {}
    if weighted.lpips is not None:
        scores["lpips"] = float(weighted.lpips(unit, truth)[0])
    if weighted.inception is not None:
        features[0].append(weighted.inception(unit))
        features[1].append(weighted.inception(truth))
    error = float(metrics.mse(unit, truth)[0])
    scores["mse"] = error
    scores["psnr"] = metrics.psnr_db(error)
    scores["ssim"] = float(metrics.ssim(unit, truth)[0])
    return scores


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def skipped_metrics(
    has_reference: bool, estimator_given: bool, weighted: WeightedMetrics | None = None
) -> dict[str, str]:
    """Metrics not computed in this run, with the reason."""
    weighted = weighted or WeightedMetrics()
    present = {
        "lpips": {"reference": has_reference, "weights": weighted.lpips is not None},
        "fid": {"reference": has_reference, "weights": weighted.inception is not None},
        "clip_score": {"weights": weighted.clip is not None},
    }
    skipped = {}
    for key, needs in OPTIONAL_METRICS.items():
        missing = [option for need, option in needs.items() if not present[key][need]]
        if missing:
            skipped[key] = "needs " + " and ".join(missing)
    if not has_reference:
        for key in ("psnr", "ssim", "mse", "tof"):
            skipped[key] = "needs --reference (the ground-truth video)"
    elif not estimator_given:
        skipped["tof"] = "needs a flow estimator"
    if weighted.latent_model is None:
        skipped["latent_warping_error"] = (
            "needs --model with a latent-space model (an SDXL folder); the built-in models work "
            "in pixel space, where the pixel errors are the latent ones"
        )
    return skipped


def result_document(scores: list[VideoScores], flow_source: str, skipped: dict) -> dict:
    return {
        "flow_source": flow_source,
        "units": "RGB in [0, 1]; warping errors and MSE are mean squares; tOF in pixels",
        "videos": [
            {
                "name": s.name,
                "path": s.path,
                "frames": s.frames,
                "fps": s.fps,
                "summary": s.summary(),
            }
            for s in scores
        ],
        "skipped": skipped,
        "frames": [{"video": s.name} | row for s in scores for row in s.rows],
    }


def write_json(document: dict, path: Path) -> None:
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps(document, indent=2) + "\n")


def write_csv(scores: list[VideoScores], path: Path) -> None:
    with atomic_output(path) as temporary, temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["video", "frame", *PER_FRAME])
        writer.writeheader()
        for s in scores:
            for row in s.rows:
                writer.writerow(
                    {"video": s.name} | {k: ("" if v is None else v) for k, v in row.items()}
                )


def write_plot(scores: list[VideoScores], path: Path) -> None:
    """One panel per metric that has values, error over frames, one line per video."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in PER_FRAME if any(_number(r.get(k)) for s in scores for r in s.rows)]
    if not keys:
        raise WdiffError(f"{path}: nothing to plot (every video has a single frame)")
    columns = min(3, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    for axis, key in zip(axes.flat, keys, strict=False):
        for s in scores:
            points = [(r["frame"], r[key]) for r in s.rows if _number(r.get(key))]
            if points:
                axis.plot(*zip(*points, strict=True), label=s.name, linewidth=1.2)
        axis.set_title(LABELS[key], fontsize=9)
        axis.set_xlabel("frame", fontsize=8)
        if key in ("warp_prev", "warp_first", "mse"):
            axis.set_yscale("log")
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(keys) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)
