"""The Python API the README shows: restore a video, warp noise, score a video, each in one
call, with the same results as the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from media import make_clip
from safetensors.torch import load_file

from wdiff.cli import main
from wdiff.noise.noise_file import write_warped_noise
from wdiff.restore import plan_restore, run_restore
from wdiff.scoring import score_videos
from wdiff.video import open_video


@pytest.mark.slow  # about 15 s on 2 idle cores: two restores, flows twice
def test_restore_warp_and_score_from_python(tmp_path, sr_model):
    clip = make_clip(tmp_path / "low.mp4", frames=4, size=(32, 24), audio=False)
    given = {"scale": 2, "steps": 3, "model": str(sr_model)}
    job = plan_restore("sr", clip, tmp_path / "up.mp4", given=given, use_cache=False)
    result = run_restore(job)
    assert result.output.is_file() and result.report_path.is_file()
    assert len(result.report["frames"]) == 4
    assert open_video(result.output).info.size == (64, 48)

    # the command line gives the same bytes and the same warping errors
    cli_out = tmp_path / "cli.mp4"
    args = ["upscale", str(clip), "--scale", "2", "--steps", "3", "--model", str(sr_model)]
    assert main([*args, "--no-cache", "--quiet", "-o", str(cli_out)]) == 0
    assert cli_out.read_bytes() == result.output.read_bytes()
    cli_report = json.loads((tmp_path / "cli.report.json").read_text())
    assert cli_report["mean_warping_error_previous"] == result.report["mean_warping_error_previous"]

    noise_path = tmp_path / "noise.safetensors"
    write_warped_noise(clip, noise_path, method="gp", grid=8, channels=4, flow=_no_cache())
    noise = next(iter(load_file(noise_path).values()))
    assert noise.shape[0] == 4 and noise.shape[-2:] == (3, 4)
    assert 0.3 < float(noise.std()) < 2.0

    scores = score_videos(
        [result.output], flow_from=clip, output=tmp_path / "e.json", flow=_no_cache()
    )
    summary = scores.document["videos"][0]["summary"]
    assert np.isfinite(summary["warp_prev"]["mean"])
    assert json.loads((tmp_path / "e.json").read_text()) == scores.document


def _no_cache():
    from wdiff.flow import FlowOptions

    return FlowOptions(use_cache=False)
