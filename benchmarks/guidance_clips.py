"""Rows of ``paper_tables.py``'s real-clip table at chosen guidance strengths, on its clips or on
real clips it keeps out (``HELD_OUT_CLIPS``: vtest, tree), for checking a guidance change on
material it was not measured on.

Per clip, scale and row (``"Fixed"``, or ``"Warped Diffusion (GP + guidance)@2"``: a row at
lambda 2): warping error to the previous frame, PSNR and detail as the table scores them, the
fidelity (PSNR of the output area-reduced to the input, against the input, as
``guidance_floor.py``) and seconds for the whole clip. ``--guidance-warp bilinear`` runs the
guidance with the bilinear warp it had before stop 34, for comparison (patched in this process
only). ``--variant`` runs a guidance change that was measured and not adopted (stop 35, in this
process only): ``band`` (the step projected onto the detail band, the null space of the x``scale``
area reduction), ``photometric:TAU`` (guidance only where the input frames agree after warping,
mean |difference| under TAU in [0, 1]), ``all-valid`` (guidance on every cell that lands in the
frame, no forward-backward test), ``fraction:C`` (a constant coefficient ``C * lambda`` instead of
``lambda / sqrt(e)``: a fixed share of the residual per step), ``deadzone:D`` (the input's
flows set to 0 where shorter than D input pixels, for the noise and the guidance alike),
``still:M`` (the input's flows set to 0 where the input frames unmoved agree as well as moved
along the flow, within M; 3x3 means of the mean |difference| over RGB in [0, 1]).

    python benchmarks/guidance_clips.py --clips tree vtest --scales 8 \
        --rows "Fixed" "Warped Diffusion (GP + guidance)@1" "Warped Diffusion (GP + guidance)@2" \
        [--guidance-warp bicubic|bilinear] \
        [--variant band|photometric:0.04|all-valid|fraction:0.16|deadzone:0.02|still:0.002] \
        [--out benchmarks/results/guidance_clips.json]
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
import torch.nn.functional as F
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
from wdiff.diffusion import guidance
from wdiff.flow import estimate_video_flows, make_estimator
from wdiff.flow.ops import inside_frame, warp_bilinear
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


def narrow_validity(field, low: np.ndarray, variant: str):
    """The input's flow field with the guidance's validity (``valid_forward``) changed by
    ``variant`` (``photometric:TAU`` or ``all-valid``; others leave it)."""
    if not variant.startswith(("photometric", "all-valid", "deadzone", "still")):
        return field
    field = field.in_memory()
    if variant.startswith("still:"):
        margin = float(variant.partition(":")[2])
        frames = torch.from_numpy(low.astype(np.float32) / 255).permute(0, 3, 1, 2)

        def keep_still(flow, source, target):
            """``flow`` over ``target``'s cells, set to 0 where ``source`` unmoved explains
            ``target`` as well as ``source`` moved along the flow (within ``margin``)."""
            moved = (warp_bilinear(source, flow) - target).abs().mean(1, keepdim=True)
            unmoved = (source - target).abs().mean(1, keepdim=True)
            moved, unmoved = F.avg_pool2d(moved, 3, 1, 1), F.avg_pool2d(unmoved, 3, 1, 1)
            return torch.where(unmoved <= moved + margin, torch.zeros_like(flow), flow)

        field.forward = keep_still(field.forward, frames[1:], frames[:-1])
        field.backward = keep_still(field.backward, frames[:-1], frames[1:])
        return field
    if variant.startswith("deadzone:"):
        bound = float(variant.partition(":")[2])
        for name in ("forward", "backward"):
            flow = getattr(field, name)
            still = flow.norm(dim=1, keepdim=True) < bound
            setattr(field, name, torch.where(still, torch.zeros_like(flow), flow))
        return field
    if variant == "all-valid":
        field.valid_forward = inside_frame(field.forward)
        return field
    tau = float(variant.partition(":")[2])
    frames = torch.from_numpy(low.astype(np.float32) / 255).permute(0, 3, 1, 2)
    residual = (warp_bilinear(frames[1:], field.forward) - frames[:-1]).abs().mean(1, keepdim=True)
    field.valid_forward = field.valid_forward & (residual < tau)
    return field


def patch_guidance(variant: str, scale: int) -> None:
    """Replace the guidance step in this process for ``band`` and ``fraction:C``."""
    if variant == "band":
        gradient = guidance.SelfGuide.gradient

        def band_gradient(self, x, denoised, sigma, step):
            grad = gradient(self, x, denoised, sigma, step)
            low = F.avg_pool2d(grad, scale)
            return grad - low.repeat_interleave(scale, 2).repeat_interleave(scale, 3)

        guidance.SelfGuide.gradient = band_gradient
    elif variant.startswith("fraction:"):
        share = float(variant.partition(":")[2])

        def fraction_loss(self, prediction, step):
            loss = prediction.new_zeros(())
            for anchor in self.anchors:
                energy = guidance.warp_residual_energy(
                    prediction, anchor.predictions[step], anchor.flow, anchor.valid
                )
                loss = loss + (share * anchor.strength * energy).sum()
            return loss

        guidance.SelfGuide._loss = fraction_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    clips = list(CLIPS | HELD_OUT_CLIPS)
    parser.add_argument("--clips", nargs="+", default=list(HELD_OUT_CLIPS), choices=clips)
    parser.add_argument("--scales", type=int, nargs="+", default=[8])
    parser.add_argument("--rows", nargs="+", default=["Fixed", f"{WARPED_DIFFUSION}@1"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", default="640x360", help="output WIDTHxHEIGHT")
    parser.add_argument("--guidance-warp", choices=["bicubic", "bilinear"], default="bicubic")
    parser.add_argument("--variant", default="none", help="see the module docstring")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/guidance_clips.json"))
    args = parser.parse_args()
    for row in args.rows:
        if row.partition("@")[0] not in dict(ROWS):
            parser.error(f"--rows {row!r}: use a row of paper_tables.ROWS, optionally @LAMBDA")
    if args.guidance_warp == "bilinear":
        guidance.warp_bicubic = warp_bilinear
    if args.variant == "band" and len(args.scales) > 1:
        parser.error("--variant band: give one --scales value")
    patch_guidance(args.variant, args.scales[0])
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
                input_field = narrow_validity(input_field, low, args.variant)
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
    output |= {"guidance_warp": args.guidance_warp, "variant": args.variant, "clips": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(output, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
