"""`wdiff eval` and the metrics: hand-computed values on tiny inputs, a perfectly warped video
scores 0 and a flickering one does not, and the files it writes."""

import csv
import json
import math

import pytest
import torch
from media import make_frame_folder, pattern
from PIL import Image

from wdiff import metrics
from wdiff.cli import main
from wdiff.flow.field import FlowField
from wdiff.flow.ops import resize_flow


def test_warping_error_by_hand():
    earlier = torch.tensor([[[[0.1, 0.2, 0.3]]]])  # (1, 1, 1, 3)
    later = torch.tensor([[[[0.9, 0.2, 0.5]]]])
    flow = torch.zeros(1, 2, 1, 3)
    flow[:, 0] = 1.0  # each cell of `earlier` lands one to the right in `later`
    valid = torch.tensor([[[[True, True, False]]]])
    # warped later at x: later(x + 1) = [0.2, 0.5]; errors (0.1)^2, (0.3)^2 over 2 valid cells
    expected = (0.1**2 + 0.3**2) / 2
    assert metrics.warping_error(later, earlier, flow, valid).item() == pytest.approx(expected)


def test_flicker_counts_only_static_cells():
    earlier = torch.zeros(1, 3, 2, 2)
    later = torch.full((1, 3, 2, 2), 0.25)
    later[..., 1, 1] = 0.75  # a moving cell, excluded below
    flow = torch.zeros(1, 2, 2, 2)
    flow[:, 0, 1, 1] = 3.0
    static = metrics.static_mask(flow, torch.ones(1, 1, 2, 2, dtype=torch.bool))
    assert static.sum() == 3
    assert metrics.flicker(later, earlier, static).item() == pytest.approx(0.25)
    nothing = torch.zeros_like(static)
    assert math.isnan(metrics.flicker(later, earlier, nothing).item())


def test_tof_is_the_mean_end_point_distance():
    ours = torch.zeros(1, 2, 2, 2)
    ours[:, 0], ours[:, 1] = 3.0, 4.0
    ours[..., 0, 0] = 0.0  # one cell agrees
    assert metrics.tof(ours, torch.zeros(1, 2, 2, 2)).item() == pytest.approx(5 * 3 / 4)


def test_mse_psnr_and_ssim_by_hand():
    a = torch.full((1, 3, 8, 8), 0.5)
    b = torch.full((1, 3, 8, 8), 0.6)
    assert metrics.mse(a, b).item() == pytest.approx(0.01)
    assert metrics.psnr(a, b).item() == pytest.approx(20.0)
    # Flat frames: SSIM reduces to its luminance term (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1)
    assert metrics.ssim(a, b).item() == pytest.approx(expected, abs=1e-6)
    assert metrics.ssim(a, a).item() == pytest.approx(1.0)


def test_resize_flow_scales_vectors_per_axis():
    flow = torch.zeros(1, 2, 4, 6)
    flow[:, 0], flow[:, 1] = 1.0, -2.0
    resized, valid = resize_flow(flow, torch.ones(1, 1, 4, 6, dtype=torch.bool), (12, 16))
    assert resized.shape == (1, 2, 16, 12) and valid.shape == (1, 1, 16, 12)
    assert torch.allclose(resized[:, 0], torch.tensor(2.0))
    assert torch.allclose(resized[:, 1], torch.tensor(-8.0))


def _shift_flows(path, frames: int, size=(64, 48)) -> None:
    """Exact flows of `pattern`'s 1-pixel shift right; the last column has nowhere to go."""
    width, height = size
    pairs = frames - 1
    forward = torch.zeros(pairs, 2, height, width)
    forward[:, 0] = 1.0
    valid_forward = torch.ones(pairs, 1, height, width, dtype=torch.bool)
    valid_forward[..., -1] = False
    valid_backward = torch.ones_like(valid_forward)
    valid_backward[..., 0] = False
    FlowField(forward, -forward, valid_forward, valid_backward).save(path)


def _flickering_folder(folder, frames: int, size=(64, 48)) -> None:
    folder.mkdir()
    for index in range(frames):
        image = pattern(index, *size).astype("int16") + (12 if index % 2 else -12)
        Image.fromarray(image.clip(0, 255).astype("uint8")).save(folder / f"f{index:03d}.png")


def test_perfectly_warped_video_scores_zero_and_flicker_does_not(tmp_path):
    frames = 6
    steady = make_frame_folder(tmp_path / "steady", frames=frames)
    _flickering_folder(tmp_path / "flicker", frames)
    flows = tmp_path / "shift.safetensors"
    _shift_flows(flows, frames)
    out = tmp_path / "eval.json"
    table, plot = tmp_path / "eval.csv", tmp_path / "eval.png"
    args = ["eval", str(steady), str(tmp_path / "flicker"), "--flows", str(flows)]
    assert main([*args, "-o", str(out), "--csv", str(table), "--plot", str(plot), "-q"]) == 0
    document = json.loads(out.read_text())
    steady_summary, flicker_summary = (v["summary"] for v in document["videos"])
    assert steady_summary["warp_prev"]["mean"] < 1e-20  # 0 up to float rounding
    assert steady_summary["warp_first"]["mean"] < 1e-20
    # brightness alternating by 24 levels: (24/255)^2 = 8.9e-3 to the previous frame, and to
    # the first frame on every other frame, less where clipping at 0 or 255 cuts the offset
    assert flicker_summary["warp_prev"]["mean"] == pytest.approx((24 / 255) ** 2, rel=0.1)
    assert flicker_summary["warp_first"]["mean"] > 3e-3
    assert "psnr" in document["skipped"] and "lpips" in document["skipped"]
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 2 * frames and rows[0]["warp_prev"] == ""
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reference_metrics_and_estimated_flows(tmp_path):
    frames = 5
    steady = make_frame_folder(tmp_path / "steady", frames=frames)
    _flickering_folder(tmp_path / "flicker", frames)
    small = tmp_path / "small"
    small.mkdir()
    for index, file in enumerate(sorted(steady.iterdir())):
        Image.open(file).resize((32, 24), Image.BICUBIC).save(small / f"s{index:03d}.png")
    out = tmp_path / "eval.json"
    args = ["eval", str(steady), str(tmp_path / "flicker"), "--reference", str(steady)]
    assert main([*args, "--flow-from", str(small), "--no-cache", "-o", str(out), "-q"]) == 0
    document = json.loads(out.read_text())
    assert "--flow-from" in document["flow_source"]
    steady_summary, flicker_summary = (v["summary"] for v in document["videos"])
    assert steady_summary["psnr"]["mean"] == 100.0 and steady_summary["ssim"]["mean"] == 1.0
    assert steady_summary["tof"]["mean"] == 0.0
    assert flicker_summary["psnr"]["mean"] < 30
    # flows estimated on a half-size copy and rescaled: not exact, still far apart
    assert steady_summary["warp_prev"]["mean"] * 5 < flicker_summary["warp_prev"]["mean"]


def test_mismatched_clips_exit_2_with_one_line(tmp_path, capfd):
    long = make_frame_folder(tmp_path / "long", frames=6)
    short = make_frame_folder(tmp_path / "short", frames=4)
    out = tmp_path / "eval.json"
    assert main(["eval", str(long), "--reference", str(short), "-o", str(out), "-q"]) == 2
    err = capfd.readouterr().err.strip()
    assert "\n" not in err and "frames" in err and not out.exists()
    assert main(["eval", str(long), "-o", str(tmp_path / "eval.txt")]) == 2
    assert "eval.txt" in capfd.readouterr().err


def test_summary_fits_100_columns_and_skip_notes_name_only_what_is_missing(tmp_path, capfd):
    """Four videos with long names: the table on stderr stays within 100 columns (a table per
    three videos); with --reference given, LPIPS's note asks only for its weights."""
    frames = 4
    steady = make_frame_folder(tmp_path / "steady", frames=frames)
    videos = []
    for index in range(4):
        folder = tmp_path / f"a-rather-long-video-name-{index}-guided-gp-noise"
        folder.symlink_to(steady, target_is_directory=True)
        videos.append(str(folder))
    capfd.readouterr()
    assert main(["eval", *videos, "--reference", str(steady), "--no-cache"]) == 0
    err = capfd.readouterr().err
    lines = err.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert sum("PSNR (dB)" in line for line in lines) == 2  # two tables: 3 videos, then 1
    lpips = next(line for line in lines if line.startswith("skipped lpips"))
    assert "--lpips-weights" in lpips and "--reference" not in lpips
    assert "skipped psnr" not in err
