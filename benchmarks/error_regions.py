"""Where the warping error to the previous frame sits: per row of ``paper_tables.py``'s real-clip
table, its error over the cells that move fast in the original (the flow the scores use longer
than ``--fast`` output pixels) against the rest, beside the original's own, with a PNG of the
per-cell maps (square root, one colour scale for all) to look at.

    python benchmarks/error_regions.py --clip megamind --scale 8 \
        --rows Fixed "Bilinear (white)" "Warped Diffusion (GP + guidance)" \
        [--frames 8] [--png benchmarks/results/error_regions_megamind_x8.png]

The error is as the table scores it (the earlier frame warped along the backward flow, squared
RGB difference in [0, 1], on valid cells), summed over frames 1 to N-1.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from paper_tables import (
    CLIPS,
    FPS,
    HELD_OUT_CLIPS,
    ROWS,
    clip_frames,
    downsample,
    run_row,
    settings_for,
    write_folder,
)

from wdiff.config import RestoreSettings
from wdiff.flow import estimate_video_flows, make_estimator
from wdiff.flow.ops import warp_bilinear
from wdiff.restore import load_denoiser
from wdiff.video import FrameFolderReader


def error_map(frames: np.ndarray, field) -> np.ndarray:
    """Per-cell squared error of each frame against its predecessor warped along the backward
    flow, on valid cells, summed over the pairs: ``frames`` uint8 (N, H, W, 3) -> (H, W)."""
    video = torch.from_numpy(frames.astype(np.float32) / 255).permute(0, 3, 1, 2)
    warped = warp_bilinear(video[:-1], field.backward[:])
    squared = ((warped - video[1:]) ** 2).mean(1) * field.valid_backward[:][:, 0].float()
    return squared.sum(0).numpy()


def read_frames(folder: Path) -> np.ndarray:
    return np.stack([cv2.imread(str(p))[..., ::-1] for p in sorted(folder.iterdir())])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="megamind", choices=list(CLIPS | HELD_OUT_CLIPS))
    parser.add_argument("--scale", type=int, default=8)
    parser.add_argument("--rows", nargs="+", default=["Fixed", "Warped Diffusion (GP + guidance)"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--fast", type=float, default=1.5, help="output pixels a frame")
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="JSON of the figures")
    args = parser.parse_args()
    size = (320, 176) if args.clip == "tree" else (640, 360)
    truth = clip_frames(args.clip, args.frames, size)
    denoiser = load_denoiser(RestoreSettings(task="sr", model="builtin"), torch.device("cpu"))
    estimator = make_estimator("dis")
    maps: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        truth_folder = write_folder(work / "truth", truth)
        low = downsample(truth, args.scale)
        low_folder = write_folder(work / "low", low)
        score_field, _ = estimate_video_flows(FrameFolderReader(truth_folder, FPS), estimator)
        score_field = score_field.in_memory()
        input_field, _ = estimate_video_flows(FrameFolderReader(low_folder, FPS), estimator)
        maps["original"] = error_map(truth, score_field)
        base = RestoreSettings(task="sr", scale=args.scale, steps=10, seed=0)
        for row in args.rows:
            name, _, strength = row.partition("@")
            settings = settings_for(base, dict(ROWS)[name])
            if strength:
                settings = replace(settings, guidance=float(strength))
            run_row(
                settings, low_folder, input_field, truth_folder, score_field, work, denoiser, None
            )
            maps[row] = error_map(read_frames(work / "out"), score_field)
        motion = score_field.backward[:].norm(dim=1).amax(0).numpy()
    fast = motion > args.fast
    pairs = args.frames - 1
    figures = {}
    for row, squared in maps.items():
        figures[row] = {
            "mean": float(squared.mean() / pairs),
            "fast": float(squared[fast].mean() / pairs),
            "rest": float(squared[~fast].mean() / pairs),
        }
        print(
            f"{args.clip} x{args.scale} {row}: mean {figures[row]['mean']:.3e}, "
            f"fast cells ({fast.mean():.2f} of them) {figures[row]['fast']:.3e}, "
            f"the rest {figures[row]['rest']:.3e}",
            flush=True,
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"clip": args.clip, "scale": args.scale, "fast_share": float(fast.mean())}
        args.out.write_text(json.dumps(record | {"rows": figures}, indent=2) + "\n")
    if args.png:
        top = max(np.quantile(np.sqrt(m), 0.99) for m in maps.values())
        tiles = []
        for row, squared in maps.items():
            level = np.clip(np.sqrt(squared) / top * 255, 0, 255).astype(np.uint8)
            heat = cv2.applyColorMap(level, cv2.COLORMAP_INFERNO)
            text = f"{row} {figures[row]['mean']:.2e}"
            cv2.putText(heat, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            tiles.append(heat)
        args.png.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.png), np.concatenate(tiles, 0))
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
