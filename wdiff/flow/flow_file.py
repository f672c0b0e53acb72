"""A video's flows into a safetensors file, with a picture of them (what ``wdiff flow`` does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from wdiff.feedback import SILENT, Feedback
from wdiff.flow.video_flow import FlowOptions, check_enough_frames, complete_field, video_flows
from wdiff.flow.viz import write_flow_video
from wdiff.locks import output_locks
from wdiff.outputs import check_output, check_suffix, default_output
from wdiff.video import MaskReader, check_video_output, open_video, resolve_input


@dataclass
class FlowFiles:
    """What ``write_video_flows`` wrote: the flows file and the picture (None when not asked),
    whether the flows came from the cache, and the damaged cache entries it discarded."""

    output: Path
    viz: Path | None = None
    cached: bool = False
    discarded: list[Path] = field(default_factory=list)


def write_video_flows(
    input: str | Path,
    output: Path | None = None,
    *,
    mask: str | Path | None = None,
    viz: Path | None = None,
    fps: float | None = None,
    flow: FlowOptions = FlowOptions(),
    overwrite: bool = False,
    device: torch.device | str = "cpu",
    feedback: Feedback = SILENT,
) -> FlowFiles:
    """Estimate the flows of ``input`` (a file, a frame folder at ``fps``, or ``builtin:bunny``)
    and save them as ``output`` (default ``INPUT.flows.safetensors``; a ``FlowField`` file).
    With ``mask`` (white = hole) the flows inside it are completed from their surroundings;
    ``viz`` gets a video of the frames beside their flow colours. Outputs are checked first."""
    source = resolve_input(input)
    output = output or default_output(source, ".flows.safetensors")
    check_suffix(output, ".safetensors", "-o")
    mask_path = resolve_input(mask) if mask else None
    inputs = [source] + ([mask_path] if mask_path else [])
    check_output(output, inputs, overwrite)
    if viz is not None:
        check_video_output(viz)
        check_output(viz, inputs + [output], overwrite)
    with output_locks([output, viz], feedback.note):  # one run per output
        reader = open_video(source, fps=fps)
        check_enough_frames(reader.info)
        masks = MaskReader(mask_path, reader.info) if mask_path else None
        estimator = flow.estimator(device, option="--flow")
        cache = flow.cache()
        flows, cached = video_flows(reader, estimator, cache, flow.method, feedback)
        if masks is not None:
            flows = complete_field(flows, masks.frames())
        flows.save(output)
        if viz is not None:
            write_flow_video(reader, flows, viz)
        return FlowFiles(output, viz, cached, list(cache.discarded))
