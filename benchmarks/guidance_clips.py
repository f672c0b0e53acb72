"""Rows of ``paper_tables.py``'s real-clip table at chosen guidance strengths, on its clips or on
real clips it keeps out (``HELD_OUT_CLIPS``: vtest, tree), for checking a guidance change on
material it was not measured on.

Per clip, scale and row (``"Fixed"``, or ``"Warped Diffusion (GP + guidance)@2"``: a row at
lambda 2): warping error to the previous frame, PSNR and detail as the table scores them, the
fidelity (PSNR of the output area-reduced to the input, against the input, as
``guidance_floor.py``) and seconds for the whole clip. ``--guidance-warp bilinear`` runs the
guidance with the bilinear warp it had before stop 34, for comparison (patched in this process
only).

    python benchmarks/guidance_clips.py --clips tree vtest --scales 8 \
        --rows "Fixed" "Warped Diffusion (GP + guidance)@1" "Warped Diffusion (GP + guidance)@2" \
        [--guidance-warp bicubic|bilinear] [--out benchmarks/results/guidance_clips.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
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
from wdiff.restore import load_denoiser
from wdiff.video import FrameFolderReader

WARPED_DIFFUSION = "Warped Diffusion (GP + guidance)"


def fidelity_psnr(output: Path, low: np.ndarray) -> float:
    """PSNR (RGB in [0, 1]) of the output frames area-reduced to ``low``'s size, against it."""
    errors = []
    for path, small in zip(sorted(output.iterdir()), low, strict=True):
        frame = cv2.imread(str(path))[..., ::-1].astype(np.float64) / 255
        reduced = cv2.resize(frame, small.shape[1::-1], interpolation=cv2.INTER_AREA)
        errors.append(np.mean((reduced - small / 255.0) ** 2))
    return float(10 * np.log10(1 / np.mean(errors)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    clips = list(CLIPS | HELD_OUT_CLIPS)
    parser.add_argument("--clips", nargs="+", default=list(HELD_OUT_CLIPS), choices=clips)
    parser.add_argument("--scales", type=int, nargs="+", default=[8])
    parser.add_argument("--rows", nargs="+", default=["Fixed", f"{WARPED_DIFFUSION}@1"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", default="640x360", help="output WIDTHxHEIGHT")
    parser.add_argument("--guidance-warp", choices=["bicubic", "bilinear"], default="bicubic")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/guidance_clips.json"))
    args = parser.parse_args()
    for row in args.rows:
        if row.partition("@")[0] not in dict(ROWS):
            parser.error(f"--rows {row!r}: use a row of paper_tables.ROWS, optionally @LAMBDA")
    if args.guidance_warp == "bilinear":
        import wdiff.diffusion.guidance as guidance
        from wdiff.flow.ops import warp_bilinear

        guidance.warp_bicubic = warp_bilinear
    size = tuple(int(side) for side in args.size.split("x"))
    denoiser = load_denoiser(RestoreSettings(task="sr", model="builtin"), torch.device("cpu"))
    estimator = make_estimator("dis")
    results: dict = {}
    for clip in args.clips:
        truth = clip_frames(clip, args.frames, size)
        results[clip] = {"size": f"{truth.shape[2]}x{truth.shape[1]}"}
        for scale in args.scales:
            with tempfile.TemporaryDirectory() as folder:
                work = Path(folder)
                truth_folder = write_folder(work / "truth", truth)
                low = downsample(truth, scale)
                low_folder = write_folder(work / "low", low)
                score_field, _ = estimate_video_flows(
                    FrameFolderReader(truth_folder, FPS), estimator
                )
                input_field, _ = estimate_video_flows(FrameFolderReader(low_folder, FPS), estimator)
                base = RestoreSettings(task="sr", scale=scale, steps=10, seed=0)
                for row in args.rows:
                    name, _, strength = row.partition("@")
                    settings = settings_for(base, dict(ROWS)[name])
                    if strength:
                        settings = replace(settings, guidance=float(strength))
                    began = time.perf_counter()
                    result = run_row(
                        settings,
                        low_folder,
                        input_field,
                        truth_folder,
                        score_field,
                        work,
                        denoiser,
                        None,
                    )
                    figures = {key: result[key] for key in ("warp_prev", "psnr", "detail")}
                    figures["fidelity_psnr"] = fidelity_psnr(work / "out", low)
                    figures["seconds"] = time.perf_counter() - began
                    results[clip].setdefault(f"x{scale}", {})[row] = figures
                    print(
                        f"{clip} x{scale} {row}: "
                        + ", ".join(f"{k} {v:.4g}" for k, v in figures.items()),
                        flush=True,
                    )
    output = {"benchmark": "guidance_clips", "frames": args.frames}
    output |= {"guidance_warp": args.guidance_warp, "clips": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
