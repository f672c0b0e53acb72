"""Scoring video files end to end (what ``wdiff eval`` does): open the videos and the reference,
get one set of flows, score every video on them (``evaluate.score_video``), write the JSON, CSV
and plot.

    from wdiff.scoring import score_videos
    result = score_videos(["guided.mp4", "plain.mp4"], flow_from="low.mp4", output=Path("e.json"))
    result.document["videos"][0]["summary"]["warp_prev"]["mean"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wdiff import evaluate
from wdiff.degrade import CroppedReader, degrade_scale
from wdiff.errors import WdiffError
from wdiff.evaluate import VideoScores, WeightedMetrics
from wdiff.feedback import SILENT, Feedback
from wdiff.flow.field import FlowField
from wdiff.flow.video_flow import FlowOptions, check_enough_frames, video_flows
from wdiff.locks import output_locks
from wdiff.outputs import check_output
from wdiff.video import VideoReader, open_video, resolve_input


@dataclass(frozen=True)
class MetricWeights:
    """Local weights of the metrics that need them, each None to skip it (never downloaded):
    torchvision AlexNet (.pth) for LPIPS, Inception-v3 (.pth) for FID, a CLIP model folder with
    the ``prompt`` to score frames against, an SDXL folder for latent warping errors."""

    lpips: Path | None = None
    fid: Path | None = None
    clip: Path | None = None
    prompt: str | None = None
    latent_model: Path | None = None

    def load(self, device: torch.device) -> WeightedMetrics:
        from wdiff import perceptual

        if self.clip is not None and not self.prompt:
            raise WdiffError("--clip-model needs --prompt (the text to score the frames against)")
        return WeightedMetrics(
            lpips=perceptual.LPIPSMetric(self.lpips, device) if self.lpips else None,
            inception=perceptual.InceptionFeatures(self.fid, device) if self.fid else None,
            clip=perceptual.CLIPScore(self.clip, self.prompt, device) if self.clip else None,
            latent_model=_latent_encoder(self.latent_model, device) if self.latent_model else None,
        )


@dataclass
class Evaluation:
    """The scores of each video, the result document (as written to JSON) and the files
    written."""

    scores: list[VideoScores]
    document: dict
    written: list[Path] = field(default_factory=list)


def score_videos(
    videos: list[str | Path],
    *,
    reference: str | Path | None = None,
    flow_from: str | Path | None = None,
    flows_file: Path | None = None,
    output: Path | None = None,
    csv_path: Path | None = None,
    plot: Path | None = None,
    weights: MetricWeights = MetricWeights(),
    flow: FlowOptions = FlowOptions(),
    fps: float | None = None,
    overwrite: bool = False,
    device: torch.device | str = "cpu",
    feedback: Feedback = SILENT,
    on_scores: Callable[[list[VideoScores], dict], None] | None = None,
) -> Evaluation:
    """Score ``videos`` (files, frame folders at ``fps``, or bundled clips), all on one set of
    flows: ``flows_file`` (from ``wdiff flow``), else estimated on ``flow_from``, else on
    ``reference``, else on the first video. With ``reference`` (ground truth) also fidelity and
    tOF. ``output`` (.json), ``csv_path`` (.csv) and ``plot`` (.png) are checked before any work
    and written at the end, after ``on_scores(scores, document)``. Names shared by several
    videos get ``#1``, ``#2``... by position."""
    if flows_file is not None and flow_from is not None:
        raise WdiffError("give --flows or --flow-from, not both")
    sources = [resolve_input(video) for video in videos]
    reference_path = resolve_input(reference) if reference else None
    inputs = sources + [p for p in (reference_path, flows_file) if p is not None]
    written = _check_outputs(
        ((output, ".json"), (csv_path, ".csv"), (plot, ".png")), inputs, overwrite
    )
    with output_locks([output, csv_path, plot], feedback.note):  # one run per output
        readers = [open_video(path, fps=fps) for path in sources]
        reference_reader = open_video(reference_path, fps=fps) if reference_path else None
        if reference_reader is not None:
            reference_reader = _as_degrade_cropped(reference_reader, readers, feedback)
        for reader in readers if reference_reader is not None else []:  # before the flows' work
            info = reader.info
            evaluate.check_matching(
                reference_reader, info.frame_count, (info.width, info.height), str(info.path)
            )
        device = torch.device(device)
        estimator = flow.estimator(device)
        if flows_file is not None:
            flows, flow_source = FlowField.load(flows_file), f"file {flows_file}"
        else:
            flow_reader, role = _flow_reader(flow_from, fps, reference_reader, readers[0])
            check_enough_frames(flow_reader.info)
            flows, _ = video_flows(flow_reader, estimator, flow.cache(), flow.method, feedback)
            flow_source = f"{flow.method} on {role} ({flow_reader.info.path})"
        weighted = weights.load(device)
        total = sum(reader.info.frame_count for reader in readers)
        with feedback.bar("eval (frames)", total) as advance:
            scores = [
                evaluate.score_video(
                    reader, flows, reference_reader, estimator, device, advance, weighted
                )
                for reader in readers
            ]
        _unique_names(scores)
        skipped = evaluate.skipped_metrics(reference_reader is not None, True, weighted)
        document = evaluate.result_document(scores, flow_source, skipped)
        if on_scores is not None:
            on_scores(scores, document)
        if output is not None:
            evaluate.write_json(document, output)
        if csv_path is not None:
            evaluate.write_csv(scores, csv_path)
        if plot is not None:
            evaluate.write_plot(scores, plot)
        return Evaluation(scores, document, written)


def _check_outputs(
    outputs: tuple[tuple[Path | None, str], ...], inputs: list[Path], overwrite: bool
) -> list[Path]:
    """Refuse a wrong suffix or a path ``check_output`` refuses; return the paths given."""
    written: list[Path] = []
    for path, suffix in outputs:
        if path is not None:
            if path.suffix.lower() != suffix:
                raise WdiffError(f"{path}: give a {suffix} file name")
            check_output(path, inputs + written, overwrite)
            written.append(path)
    return written


def _as_degrade_cropped(
    reference: VideoReader, readers: list[VideoReader], feedback: Feedback
) -> VideoReader:
    """The reference cropped as ``wdiff degrade --scale N`` crops its input, when that makes
    it the size of every video (a restoration of a degraded copy); else as it is."""
    sizes = {reader.info.size for reader in readers}
    if len(sizes) != 1:
        return reference
    size = sizes.pop()
    info = reference.info
    if degrade_scale(info.size, size) is None:
        return reference
    feedback.note(
        f"{info.path}: reference cropped from {info.width}x{info.height} to {size[0]}x{size[1]} "
        "at the top left, as wdiff degrade crops its input to multiples of --scale"
    )
    return CroppedReader(reference, size)


def _flow_reader(
    flow_from: str | Path | None, fps: float | None, reference: VideoReader | None, first
) -> tuple[VideoReader, str]:
    """The video to estimate the flows on, and its role for the document's ``flow_source``."""
    if flow_from is not None:
        return open_video(resolve_input(flow_from), fps=fps), "--flow-from"
    if reference is not None:
        return reference, "the reference"
    return first, "the first video"


def _unique_names(scores: list[VideoScores]) -> None:
    names = [s.name for s in scores]
    for index, s in enumerate(scores):
        if names.count(s.name) > 1:
            s.name = f"{s.name}#{index + 1}"


def _latent_encoder(model: Path, device: torch.device):
    from wdiff.models.sdxl import LatentEncoder, is_sdxl_folder

    if str(model).startswith("builtin") or not is_sdxl_folder(model):
        raise WdiffError(
            f"--model {model}: give a diffusers SDXL folder; the built-in models work in pixel "
            "space, where the pixel errors are the latent ones"
        )
    return LatentEncoder(model, device)
