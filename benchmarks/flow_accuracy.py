"""Optical-flow accuracy on photographs moved by known sub-pixel motions, and the cache's speed-up.

For each estimator and motion (translation, rotation, zoom of scikit-image's astronaut): mean
end-point error on valid pixels at least 10 px from the border, the share of truly out-of-frame
pixels marked invalid, and the PSNR of frame j rebuilt by warping frame j+1 with the forward
flow (valid pixels). Then the time of a cold and a cached `estimate_video_flows` on the
bundled clip.

    python benchmarks/flow_accuracy.py [--out benchmarks/results/flow_accuracy.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from skimage import data

from wdiff.flow import (
    TensorCache,
    estimate_video_flows,
    inside_frame,
    make_estimator,
    warp_bilinear,
)
from wdiff.flow.ops import consistency_mask
from wdiff.synthetic import motion, moved_photo
from wdiff.video import open_video

MOTIONS = {"translation": 1.37, "rotation": 1.2, "zoom": 0.025}
ESTIMATORS = {
    "dis-fast": ("dis", "fast"),
    "dis-medium": ("dis", "medium"),
    "dis-fine": ("dis", "fine"),
    "farneback": ("farneback", "fine"),
}
BORDER = 10


def accuracy(estimator, kind: str) -> dict:
    clip, truth = moved_photo(data.astronaut(), motion(kind, MOTIONS[kind], (256, 256)), 4, 192)
    forward = estimator(clip[:-1], clip[1:])
    backward = estimator(clip[1:], clip[:-1])
    valid = consistency_mask(forward, backward)
    inner = (slice(None), 0, slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    error = (forward - truth).norm(dim=1, keepdim=True)
    epe = float(error[inner][valid[inner]].mean())
    leaving = ~inside_frame(truth[None].expand_as(forward))
    caught = float((~valid)[leaving].float().mean()) if leaving.any() else float("nan")
    frames = torch.from_numpy(clip).permute(0, 3, 1, 2).float()
    rebuilt = warp_bilinear(frames[1:], forward)
    mask = valid.expand_as(rebuilt)
    psnr = float(10 * torch.log10(255**2 / ((rebuilt - frames[:-1])[mask] ** 2).mean()))
    return {
        "epe_px": round(epe, 4),
        "out_of_frame_caught": round(caught, 4),
        "valid_share": round(float(valid.float().mean()), 4),
        "rebuild_psnr_db": round(psnr, 2),
    }


def cache_speedup() -> dict:
    reader = open_video("builtin:bunny")
    estimator = make_estimator("dis")
    with tempfile.TemporaryDirectory() as folder:
        cache = TensorCache(Path(folder))
        start = time.perf_counter()
        estimate_video_flows(reader, estimator, cache=cache)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        _, hit = estimate_video_flows(reader, estimator, cache=cache)
        warm = time.perf_counter() - start
    assert hit
    return {
        "clip": "builtin:bunny (50 frames, 320x180)",
        "cold_s": round(cold, 3),
        "cached_s": round(warm, 4),
        "speedup": round(cold / warm, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/flow_accuracy.json"))
    args = parser.parse_args()
    rows = []
    for name, (method, preset) in ESTIMATORS.items():
        estimator = make_estimator(method, dis_preset=preset)
        for kind in MOTIONS:
            row = {"estimator": name, "motion": kind, **accuracy(estimator, kind)}
            rows.append(row)
            print(
                f"{name:>10} {kind:>11}  EPE {row['epe_px']:.3f} px  out-of-frame caught "
                f"{row['out_of_frame_caught']:.1%}  rebuild {row['rebuild_psnr_db']:.1f} dB",
                flush=True,
            )
    cache = cache_speedup()
    print(f"cache: cold {cache['cold_s']} s, cached {cache['cached_s']} s, {cache['speedup']}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"benchmark": "flow_accuracy", "rows": rows, "cache": cache}, indent=2) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
