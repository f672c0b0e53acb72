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
from wdiff.config import RestoreSettings
from wdiff.errors import WdiffError
from wdiff.models.sdxl import SDXLDenoiser, SDXLOptions
from wdiff.restore.models import load_denoiser
from wdiff.tasks import SuperResolution
from wdiff.video import open_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_sdxl(tmp_path_factory):
    return make_tiny_sdxl(tmp_path_factory.mktemp("sdxl"))


@pytest.fixture(scope="module")
def inpaint_sdxl(tmp_path_factory):
    """The layout of diffusers/stable-diffusion-xl-1.0-inpainting-0.1 (9-channel UNet)."""
    return make_tiny_sdxl(tmp_path_factory.mktemp("sdxl"), in_channels=9, name="inpaint")


@pytest.fixture(scope="module")
def sr_sdxl(tmp_path_factory):
    """An SDXL already fine-tuned for SR by wdiff (8-channel UNet)."""
    return make_tiny_sdxl(tmp_path_factory.mktemp("sdxl"), in_channels=8, name="sr")


def _capture(module, calls):
    def hook(_, args, kwargs, output):
        calls.append((args, kwargs, output))

    return module.register_forward_hook(hook, with_kwargs=True)


def test_inpaint_builds_the_unet_input_of_diffusers_sdxl_inpaint_pipeline(inpaint_sdxl):
    from diffusers import StableDiffusionXLInpaintPipeline

    from wdiff.tasks import Inpainting

    pipe = StableDiffusionXLInpaintPipeline.from_pretrained(inpaint_sdxl, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    ours = SDXLDenoiser(inpaint_sdxl, "inpaint", "cpu", SDXLOptions(dtype="fp32"))
    assert not ours.widened
    torch.manual_seed(1)
    frame = torch.rand(1, 3, 32, 48) * 2 - 1  # [-1, 1]
    mask = torch.zeros(1, 1, 32, 48, dtype=torch.bool)
    mask[..., 7:23, 13:37] = True  # edges off the latent grid: nearest, not area
    prompt = "a robot on a bench"

    # the masked image each feeds the VAE
    theirs_image, ours_image = [], []
    hooks = [
        pipe.vae.encoder.register_forward_pre_hook(lambda m, a: theirs_image.append(a[0])),
        ours.vae.encoder.register_forward_pre_hook(lambda m, a: ours_image.append(a[0])),
    ]
    common = {"prompt": prompt, "image": (frame + 1) / 2, "mask_image": mask.float()}
    common |= {"guidance_scale": 1.0, "strength": 1.0, "output_type": "latent"}
    common |= {"height": 32, "width": 48}
    pipe(**common, num_inference_steps=1, generator=torch.Generator().manual_seed(0))
    cond = ours.condition(Inpainting(), frame, mask, prompt)
    for hook in hooks:
        hook.remove()
    torch.testing.assert_close(ours_image[0], theirs_image[0], atol=1e-5, rtol=0)

    # the UNet input and x0 at the pipeline's first sigma, for the same masked-image latents
    # (the pipeline samples the VAE posterior, wdiff takes its mean)
    theirs, mine = [], []
    hook = _capture(pipe.unet, theirs)
    pipe(
        **common,
        num_inference_steps=4,
        masked_image_latents=cond["latents"][:, 1:],
        generator=torch.Generator().manual_seed(0),
    )
    hook.remove()
    (their_input, their_t), their_kwargs, their_out = theirs[0]
    sigma = pipe.scheduler.sigmas[0].float()
    x = their_input[:, :4] * (sigma**2 + 1).sqrt()
    hook = _capture(ours.unet, mine)
    x0 = ours(x, sigma, cond)
    hook.remove()
    (my_input, my_t), my_kwargs, _ = mine[0]
    torch.testing.assert_close(my_input, their_input, atol=1e-5, rtol=0)
    assert torch.allclose(my_t.float(), torch.as_tensor(their_t).float(), atol=1e-3)
    for name in ("encoder_hidden_states",):
        torch.testing.assert_close(my_kwargs[name], their_kwargs[name], atol=1e-5, rtol=0)
    for name in ("text_embeds", "time_ids"):
        torch.testing.assert_close(
            my_kwargs["added_cond_kwargs"][name].float(),
            their_kwargs["added_cond_kwargs"][name].float(),
            atol=1e-5,
            rtol=0,
        )
    torch.testing.assert_close(x0, x - sigma * their_out[0], atol=1e-5, rtol=0)


def test_inpaint_and_upscale_from_public_and_fine_tuned_layouts(inpaint_sdxl, sr_sdxl, tmp_path):
    from PIL import Image

    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(16, 12))
    hole = Image.new("L", (16, 12), 0)
    hole.paste(255, (4, 4, 12, 10))
    hole.save(tmp_path / "mask.png")
    common = ["--steps", "2", "--dtype", "fp32", "--quiet", "--no-cache"]
    painted = tmp_path / "painted.mp4"
    inpaint = ["inpaint", str(clip), "--mask", str(tmp_path / "mask.png"), "--prompt", "a cat"]
    assert main([*inpaint, "--model", str(inpaint_sdxl), *common, "-o", str(painted)]) == 0
    info = open_video(painted).info
    assert (info.width, info.height, info.frame_count) == (16, 12, 3)
    upscaled = tmp_path / "up.mp4"
    upscale = ["upscale", str(clip), "--scale", "2", "--model", str(sr_sdxl)]
    assert main([*upscale, *common, "-o", str(upscaled)]) == 0
    info = open_video(upscaled).info
    assert (info.width, info.height, info.frame_count) == (32, 24, 3)


def test_a_batch_reuses_the_loaded_sdxl_with_single_runs_bytes(sr_sdxl, tmp_path, model_loads):
    """Two inputs through one loaded SDXL (#18): loaded once, and each output byte for byte what
    a run of that input alone, with its own fresh load, writes."""
    (tmp_path / "in").mkdir()
    a = make_clip(tmp_path / "in" / "a.mp4", frames=3, size=(16, 12), audio=False)
    b = make_clip(tmp_path / "in" / "b.mp4", frames=4, size=(16, 12), audio=False)
    common = ["--scale", "2", "--model", str(sr_sdxl), "--steps", "2", "--dtype", "fp32"]
    common += ["--quiet", "--no-cache"]
    out = tmp_path / "out"
    assert main(["upscale", str(a), str(b), *common, "-o", str(out)]) == 0
    assert len(model_loads) == 1
    written = sorted(path for path in out.glob("*.mp4"))
    assert [path.name.split(".")[0] for path in written] == ["a", "b"]
    for clip, batch_output in zip((a, b), written, strict=True):
        alone = tmp_path / f"{clip.stem}-alone.mp4"
        assert main(["upscale", str(clip), *common, "-o", str(alone)]) == 0
        assert alone.read_bytes() == batch_output.read_bytes()
    assert len(model_loads) == 3


def test_a_base_sdxl_is_refused_for_restoring_in_one_line(tiny_sdxl, tmp_path, capfd):
    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(16, 12))
    args = ["upscale", str(clip), "--scale", "2", "--model", str(tiny_sdxl), "--dtype", "fp32"]
    assert main([*args, "-o", str(tmp_path / "up.mp4")]) == 2
    err = capfd.readouterr().err.strip()
    assert "\n" not in err and "wdiff finetune" in err and "not fine-tuned" in err
    assert not (tmp_path / "up.mp4").exists()


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
    args += ["--train-steps", "1", "--batch-size", "2", "--crop", "32", "--lr", "1e-3"]
    assert main([*args, "--out", str(tuned), "--quiet"]) == 0
    index = json.loads((tuned / "model_index.json").read_text())
    assert index["_wdiff_finetune"] == {"task": "sr", "noise": "gp"}  # told apart from public
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
    # an SR fine-tune is refused for inpainting in one line, by its mark, before loading
    settings = RestoreSettings(task="inpaint", model=str(tuned))
    with pytest.raises(WdiffError, match="fine-tuned by wdiff finetune for sr; use it with wdiff"):
        load_denoiser(settings, torch.device("cpu"))
    # a latent model's report also has the errors in its working space
    assert report["frames"][1]["latent_warping_error_previous"] is not None
    assert report["mean_latent_warping_error_first"] >= 0


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


def test_a_latent_model_in_tiles_runs_every_frame(sr_sdxl, tmp_path):
    # the third frame once died here: the pipeline reused the name of the tile grid for a Motion
    clip = make_clip(tmp_path / "low.mp4", frames=4, size=(48, 32))
    out = tmp_path / "tiled.mp4"
    args = ["upscale", str(clip), "--scale", "2", "--model", str(sr_sdxl), "--steps", "1"]
    args += ["--dtype", "fp32", "--tile", "64", "--tile-overlap", "16", "--quiet", "--no-cache"]
    assert main([*args, "-o", str(out)]) == 0
    assert open_video(out).info.frame_count == 4
    report = json.loads((tmp_path / "tiled.report.json").read_text())
    assert [row["tile"] for row in report["frames"]] == [64] * 4
    assert all(row["latent_warping_error_previous"] is not None for row in report["frames"][1:])
