"""How the GP warper's tile bank grows over a long clip at a large size (#18), frame by frame:
`wdiff upscale`'s noise alone (the clip of `memory.py`: the bundled one resized to the input
size and played forward then back; DIS flows of the input upscaled ``--scale`` times to
the output grid; 3 channels).

Per frame: births (cells given fresh noise: flow invalid or map worn out), cells moved by the
plane cap (born again to clear room, ``evicted``), fresh planes in use, the share of cells off
plane 0, tiles built this frame (and how many of them for the first time), tiles read (distinct
tiles under the positions), the spill file's size, the noise's standard deviation and the
warp's seconds (one thread). Without a cap (``--max-planes 1000``) the tiles grow by hundreds a
frame; with the default cap they level off.

    python benchmarks/gp_tiles.py [--frames 60] [--size 1920x1080] [--scale 2]
        [--max-planes N] [--out benchmarks/results/gp_tiles.json]

``wdiff N ARGS`` runs the CLI with ``GPWarper(max_planes=N)`` as the default instead (there is
no option for it), to compare restored videos with and without the cap:

    python benchmarks/gp_tiles.py wdiff 1000 upscale low.mp4 --scale 2 --preset fast -o free.mp4
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from memory import frames
from noise_stretch import run_wdiff


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "wdiff":
        sys.exit(run_wdiff(sys.argv[3:], max_planes=int(sys.argv[2])))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="1920x1080", help="output WIDTHxHEIGHT")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--max-planes", type=int, default=None, help="default: the warper's")
    parser.add_argument("--every", type=int, default=1, help="print every N-th frame")
    parser.add_argument("--device", default="cpu", help="where the warper runs (cuda: its GPU)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    import wdiff.noise.gp as gp
    from wdiff.flow.motion import Motion
    from wdiff.flow.ops import upscale_flow
    from wdiff.flow.video_flow import FlowOptions, _with_validity
    from wdiff.noise.planes import FRESH_STRIDE, plane_of, rehome

    width, height = (int(v) for v in args.size.split("x"))
    low = (width // args.scale, height // args.scale)
    clip = list(frames(low, args.frames + 1))
    estimator = FlowOptions().estimator()

    moved = {}

    def counted_rehome(positions, births, max_planes):
        out = rehome(positions, births, max_planes)
        moved["births"] = int(births.sum())
        moved["evicted"] = int(((out != positions).any(dim=1) & ~births).sum())
        return out

    gp.rehome = counted_rehome  # the warper's own rehome, counted
    options = {} if args.max_planes is None else {"max_planes": args.max_planes}
    warper = gp.GPWarper(**options)
    device = torch.empty(0, device=args.device).device  # "cuda" -> "cuda:0", as the warper keys it
    bank = warper._features(0, 3, device)  # the bank init will use, to count it
    ever: set[int] = set()
    built_new = [0]
    build = bank._build

    def counted_build(key: int) -> torch.Tensor:
        if key not in ever:
            ever.add(key)
            built_new[0] += 1
        return build(key)

    bank._build = counted_build
    state = warper.init((1, 3, low[1] * args.scale, low[0] * args.scale), 0, device)
    cells = state.extra.positions[0, 0].numel()
    rows = []
    for index in range(1, args.frames + 1):
        first, second = clip[index - 1], clip[index]
        forward = estimator(first[None], second[None]).float()
        backward = estimator(second[None], first[None]).float()
        pair = _with_validity(forward, backward)
        parts = []
        for flow, valid in (("backward", "valid_backward"), ("forward", "valid_forward")):
            parts += upscale_flow(pair[flow].to(device), pair[valid].to(device), args.scale)
        builds, built_new[0], moved = bank.builds, 0, {"births": 0, "evicted": 0}
        start = time.perf_counter()
        state = warper.warp(state, Motion(*parts))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        positions = state.extra.positions[0]
        planes = plane_of(positions[1])
        local_y = positions[1] - planes * FRESH_STRIDE
        tiles = torch.stack(
            [planes, torch.floor(positions[0] / bank.tile), torch.floor(local_y / bank.tile)]
        ).reshape(3, -1)
        row = {
            "frame": index,
            "births": round(moved["births"] / cells, 4),
            "evicted": round(moved["evicted"] / cells, 4),
            "planes": int(planes.max()),
            "off_plane_0": round(float((planes > 0).float().mean()), 3),
            "tiles_built": bank.builds - builds,
            "tiles_built_first_time": built_new[0],
            "tiles_built_total": len(ever),
            "tiles_read": int(torch.unique(tiles, dim=1).shape[1]),
            "spill_gb": round(len(bank._file_slots) * bank._tile_bytes / 1e9, 2),
            "noise_std": round(float(state.noise.std()), 3),
            "seconds": round(seconds, 2),
        }
        rows.append(row)
        if index % args.every == 0 or index == args.frames:
            print(json.dumps(row), flush=True)
    if args.out:
        summary = {
            "size": args.size,
            "device": str(device),
            "scale": args.scale,
            "max_planes": warper.max_planes,
            "frames": rows,
        }
        with open(args.out, "w") as handle:
            json.dump(summary, handle, indent=1)


if __name__ == "__main__":
    main()
