"""How wrong the flow of a small input is on the real clips of ``paper_tables.py``.

For each clip and ``--scales``: the backward flows ``wdiff upscale`` uses (DIS on the input,
reduced ``scale`` times as the table reduces it, then upscaled to the output grid) against DIS
on the originals (the flows the table scores with), over the first ``--frames`` frames at
``--size``. Per clip: the motion's size (median and 90th percentile of the originals' flow
length, output pixels per frame), the estimate's median length, and the end-point error
(median and mean), for docs/guidance.md.

    python benchmarks/clip_flows.py [--scales 8 4] [--upsample 2] [--out ...clip_flows.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from paper_tables import CLIPS, FPS, UpsampledDIS, clip_frames, downsample, write_folder

from wdiff.flow import estimate_video_flows, make_estimator
from wdiff.flow.ops import upscale_flow
from wdiff.video import FrameFolderReader


def backward_flows(folder: Path, estimator) -> torch.Tensor:
    """DIS backward flows ``(N-1, 2, H, W)`` of a frame folder."""
    field, _ = estimate_video_flows(FrameFolderReader(folder, FPS), estimator)
    return field.backward[:]


def compare(estimated: torch.Tensor, truth: torch.Tensor) -> dict:
    lengths, true_lengths = estimated.norm(dim=1), truth.norm(dim=1)
    error = (estimated - truth).norm(dim=1)
    figures = {
        "motion_median": true_lengths.median(),
        "motion_p90": true_lengths.quantile(0.9),
        "estimate_median": lengths.median(),
        "error_median": error.median(),
        "error_mean": error.mean(),
    }
    return {key: round(float(value), 3) for key, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--scales", type=int, nargs="+", default=[8, 4])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", default="640x360", help="output WIDTHxHEIGHT")
    parser.add_argument(
        "--upsample", type=int, default=1, help="estimate on the input upsampled this many times"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/clip_flows.json"))
    args = parser.parse_args()
    size = tuple(int(side) for side in args.size.split("x"))
    estimator = make_estimator("dis")
    rows: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for clip in args.clips:
            truth = clip_frames(clip, args.frames, size)
            truth_flows = backward_flows(write_folder(Path(folder) / clip, truth), estimator)
            height, width = truth_flows.shape[-2:]
            for scale in args.scales:
                low = write_folder(Path(folder) / f"{clip}-x{scale}", downsample(truth, scale))
                own = UpsampledDIS(args.upsample) if args.upsample > 1 else estimator
                fine, _ = upscale_flow(backward_flows(low, own), None, scale)
                row = compare(fine[..., :height, :width], truth_flows)
                rows.setdefault(clip, {})[f"x{scale}"] = row
                print(f"{clip} x{scale}: {row}", flush=True)
    result = {"benchmark": "clip_flows", "size": args.size, "frames": args.frames}
    result |= {"upsample": args.upsample, "clips": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
