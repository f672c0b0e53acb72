"""Streaks on moving objects (#19): how far the GP warper's position map is stretched or
compressed, and what that does to the noise, in ``wdiff upscale``'s setting (the input's flows
upscaled ``--scale`` times to the output grid, 3 channels), per frame, on a box (default: the
bunny's body in the demo) and a background box.

For each frame of ``--frames``: the median and 95th/5th percentiles of the largest/smallest
singular value of the position map's local Jacobian (1 = unit spacing), the share of cells
outside [1/1.5, 1.5], and the noise's lag-1 autocorrelation along x and y (unit-scale GP noise:
0.35). ``--max-stretch none`` is the warper before #19; ``wdiff`` runs the CLI with that
``max_stretch`` as the GP warper's default (there is no option for it):

    wdiff degrade builtin:bunny --scale 8 -o low.mp4
    python benchmarks/noise_stretch.py low.mp4 --max-stretch none
    python benchmarks/noise_stretch.py low.mp4
    python benchmarks/noise_stretch.py wdiff none upscale low.mp4 --scale 8 --preset fast -o b.mp4
"""

from __future__ import annotations

import argparse
import json
import sys

import torch


def stretch_value(text: str) -> float | None:
    return None if text == "none" else float(text)


def jacobian_values(positions: torch.Tensor) -> torch.Tensor:
    """Singular values (h-1, w-1, 2), largest first, of the map ``positions`` (1, 2, h, w)."""
    p = positions[0]
    dx = p[:, :-1, 1:] - p[:, :-1, :-1]
    dy = p[:, 1:, :-1] - p[:, :-1, :-1]
    return torch.linalg.svdvals(torch.stack([dx, dy], dim=-1).permute(1, 2, 0, 3))


def box_stats(noise: torch.Tensor, values: torch.Tensor, box: list[int]) -> dict:
    """Statistics of the noise and the spacing in ``box`` = (y0, y1, x0, x1) cells."""
    y0, y1, x0, x1 = box
    n = noise[0, :, y0:y1, x0:x1].double()
    c = n - n.mean(dim=(1, 2), keepdim=True)
    variance = c.pow(2).mean()
    s = values[y0 : y1 - 1, x0 : x1 - 1].reshape(-1, 2)
    s = s[s[:, 0] < 2.0 * 1.5 + 1]  # seams between generations are jumps, not spacing
    outside = (s[:, 0] > 1.5) | (s[:, 1] < 1 / 1.5)
    return {
        "lag1_x": round(float((c[..., 1:] * c[..., :-1]).mean() / variance), 3),
        "lag1_y": round(float((c[..., 1:, :] * c[..., :-1, :]).mean() / variance), 3),
        "std": round(float(n.std()), 3),
        "max_sv_median_p95": _quantiles(s[:, 0], 0.5, 0.95),
        "min_sv_median_p05": _quantiles(s[:, 1], 0.5, 0.05),
        "outside_1.5": round(float(outside.float().mean()), 3),
    }


def _quantiles(values: torch.Tensor, *q: float) -> list[float]:
    return [round(float(values.quantile(level)), 3) for level in q]


def stats(args: argparse.Namespace) -> None:
    from wdiff.flow.motion import Motion
    from wdiff.flow.ops import upscale_flow
    from wdiff.flow.video_flow import FlowOptions, video_flows
    from wdiff.noise import GPWarper
    from wdiff.video import open_video

    reader = open_video(args.video)
    options = FlowOptions()
    field, _ = video_flows(reader, options.estimator(), options.cache(), "input")
    width, height = field.size
    warper = GPWarper(max_stretch=args.max_stretch)
    state = warper.init((1, 3, height * args.scale, width * args.scale), args.seed)
    for index in range(max(args.frames) + 1):
        if index > 0:
            parts = []
            for flow, valid in (
                (field.backward, field.valid_backward),
                (field.forward, field.valid_forward),
            ):
                parts += upscale_flow(
                    flow[index - 1 : index].float(), valid[index - 1 : index], args.scale
                )
            state = warper.warp(state, Motion(*parts))
        if index in args.frames:
            values = jacobian_values(state.extra.positions)
            row = {
                name: box_stats(state.noise, values, box)
                for name, box in (("object", args.box), ("background", args.background))
            }
            head = {"frame": index, "max_stretch": args.max_stretch}
            print(json.dumps(head | row), flush=True)


def run_wdiff(argv: list[str], **defaults) -> int:
    """The wdiff CLI with ``defaults`` (e.g. ``max_stretch=...``) as GPWarper's defaults."""
    import wdiff.noise.gp as gp
    from wdiff.cli.entry import main

    original = gp.GPWarper.__init__

    def init(self, *a, **k) -> None:
        original(self, *a, **(defaults | k))

    gp.GPWarper.__init__ = init
    return main(argv)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "wdiff":
        sys.exit(run_wdiff(sys.argv[3:], max_stretch=stretch_value(sys.argv[2])))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video")
    parser.add_argument("--scale", type=int, default=8)
    parser.add_argument("--max-stretch", type=stretch_value, default=1.5)
    parser.add_argument("--frames", type=int, nargs="+", default=[0, 10, 25, 40, 49])
    parser.add_argument("--box", type=int, nargs=4, default=[60, 170, 80, 170])
    parser.add_argument("--background", type=int, nargs=4, default=[10, 60, 230, 320])
    parser.add_argument("--seed", type=int, default=0)
    torch.set_num_threads(1)
    stats(parser.parse_args())


if __name__ == "__main__":
    main()
