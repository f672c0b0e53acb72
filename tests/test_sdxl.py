"""The SDXL path on a tiny randomly initialised SDXL-shaped pipeline saved to a local folder:
load with local files only, widen conv_in once, fine-tune one step, upscale and inpaint end to
end through the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from media import make_clip
from sdxl_tiny import make_tiny_sdxl

from wdiff.cli import main
from wdiff.errors import WdiffError
from wdiff.models.sdxl import SDXLDenoiser, SDXLOptions
from wdiff.tasks import SuperResolution
from wdiff.video import open_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_sdxl(tmp_path_factory):
    return make_tiny_sdxl(tmp_path_factory.mktemp("sdxl"))


def test_loads_local_folder_and_widens_conv_in_with_zeros(tiny_sdxl):
    denoiser = SDXLDenoiser(tiny_sdxl, "sr", "cpu", SDXLOptions(dtype="fp32"))
    assert denoiser.widened and denoiser.unet.config.in_channels == 8
    weight = denoiser.unet.conv_in.weight
    assert torch.count_nonzero(weight[:, 4:]) == 0 and torch.count_nonzero(weight[:, :4]) > 0
    low = torch.rand(1, 3, 12, 16) * 2 - 1
    cond = denoiser.condition(SuperResolution(2), low, None, "a robot")
    assert cond["latents"].shape == (1, 4, 12, 16) and cond["text"].shape == (1, 77, 64)
    x = torch.randn(1, 4, 12, 16) * 3
    with torch.no_grad():
        out = denoiser(x, torch.tensor(3.0), cond)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # zero weights on the new channels: the condition does not change the prediction yet
    other = denoiser.condition(SuperResolution(2), -low, None, "a robot")
    with torch.no_grad():
        assert torch.allclose(denoiser(x, torch.tensor(3.0), other), out, atol=1e-5)


def test_incomplete_folder_names_what_is_missing(tiny_sdxl, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_sdxl, broken)
    shutil.rmtree(broken / "text_encoder_2")
    with pytest.raises(WdiffError, match="text_encoder_2/config.json"):
        SDXLDenoiser(broken, "sr")


def test_finetune_one_step_then_upscale_and_inpaint(tiny_sdxl, tmp_path):
    tuned = tmp_path / "tuned"
    args = ["finetune", "--task", "sr", "--noise", "gp", "--arch", str(tiny_sdxl)]
    args += ["--steps", "1", "--batch-size", "2", "--crop", "32", "--lr", "1e-3"]
    assert main([*args, "--out", str(tuned), "--quiet"]) == 0
    assert (tuned / "model_index.json").is_file()
    # the saved UNet is already widened: loading it again must not widen it twice
    denoiser = SDXLDenoiser(tuned, "sr", "cpu", SDXLOptions(dtype="fp32"))
    assert not denoiser.widened and denoiser.unet.config.in_channels == 8
    before = SDXLDenoiser(tiny_sdxl, "sr", "cpu", SDXLOptions(dtype="fp32"))
    assert not torch.equal(denoiser.unet.conv_in.weight, before.unet.conv_in.weight)

    clip = make_clip(tmp_path / "low.mp4", frames=4, size=(16, 12))
    out = tmp_path / "up.mp4"
    common = ["--model", str(tuned), "--steps", "2", "--dtype", "fp32", "--quiet"]
    assert main(["upscale", str(clip), "--scale", "2", *common, "-o", str(out)]) == 0
    info = open_video(out).info
    assert (info.width, info.height, info.frame_count) == (32, 24, 4)
    report = json.loads((tmp_path / "up.report.json").read_text())
    assert report["frames"][1]["warping_error_previous"] is not None
    # a latent model's report also has the errors in its working space
    assert report["frames"][1]["latent_warping_error_previous"] is not None
    assert report["mean_latent_warping_error_first"] >= 0

    mask = tmp_path / "mask.png"
    from PIL import Image

    hole = Image.new("L", (16, 12), 0)
    hole.paste(255, (4, 4, 12, 10))
    hole.save(mask)
    painted = tmp_path / "painted.mp4"
    inpaint = ["inpaint", str(clip), "--mask", str(mask), "--prompt", "a robot on a bench"]
    assert main([*inpaint, "--model", str(tiny_sdxl), *common[2:], "-o", str(painted)]) == 0
    assert open_video(painted).info.frame_count == 4


def test_eval_measures_warping_errors_in_the_latent_space(tiny_sdxl, tmp_path):
    from media import make_frame_folder

    video = make_frame_folder(tmp_path / "video", frames=4)  # 64x48: whole 2-pixel cells
    out = tmp_path / "eval.json"
    assert (
        main(["eval", str(video), "--model", str(tiny_sdxl), "--no-cache", "-q", "-o", str(out)])
        == 0
    )
    document = json.loads(out.read_text())
    summary = document["videos"][0]["summary"]
    assert summary["latent_warp_prev"]["mean"] >= 0 and summary["latent_warp_first"]["mean"] >= 0
    assert "latent_warping_error" not in document["skipped"]
    assert main(["eval", str(video), "--model", "builtin", "-q"]) == 2


def test_a_latent_model_in_tiles_runs_every_frame(tiny_sdxl, tmp_path):
    # the third frame once died here: the pipeline reused the name of the tile grid for a Motion
    clip = make_clip(tmp_path / "low.mp4", frames=4, size=(48, 32))
    out = tmp_path / "tiled.mp4"
    args = ["upscale", str(clip), "--scale", "2", "--model", str(tiny_sdxl), "--steps", "1"]
    args += ["--dtype", "fp32", "--tile", "64", "--tile-overlap", "16", "--quiet", "--no-cache"]
    assert main([*args, "-o", str(out)]) == 0
    assert open_video(out).info.frame_count == 4
    report = json.loads((tmp_path / "tiled.report.json").read_text())
    assert [row["tile"] for row in report["frames"]] == [64] * 4
    assert all(row["latent_warping_error_previous"] is not None for row in report["frames"][1:])
