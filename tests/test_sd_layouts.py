"""SD 1.5/2 inpainting and the SD x4 upscaler, run as their diffusers pipelines run them: tiny
random folders of the public layouts (tests/sd_tiny.py), the pipeline's every UNet call
captured by a forward hook and compared with wdiff's along the same noise (inputs, timesteps,
text states, class labels, x0) to 1e-5 in fp32; end to end through the CLI; other layouts
refused in one line."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from media import make_clip
from sd_tiny import make_tiny_sd_inpaint, make_tiny_sd_upscaler

from wdiff.cli import main
from wdiff.diffusion.sampler import sample_frame
from wdiff.models.folder import FolderOptions
from wdiff.models.sd import SDInpaintDenoiser, SDUpscaleDenoiser
from wdiff.tasks import Inpainting, SuperResolution
from wdiff.video import open_video

pytestmark = pytest.mark.slow
FP32 = FolderOptions(dtype="fp32")
STEPS = 3


@pytest.fixture(scope="module")
def sd_inpaint(tmp_path_factory):
    return make_tiny_sd_inpaint(tmp_path_factory.mktemp("sd"))


@pytest.fixture(scope="module")
def sd_upscaler(tmp_path_factory):
    return make_tiny_sd_upscaler(tmp_path_factory.mktemp("sd"))


def _hook(module, calls):
    def hook(_, args, kwargs, output):
        calls.append((args, kwargs, output))

    return module.register_forward_hook(hook, with_kwargs=True)


def _recording_x0(scheduler, x0s):
    step = scheduler.step

    def recording(*args, **kwargs):
        out = step(*args, **kwargs)
        x0s.append(out[1])  # DDIM's pred_original_sample
        return out

    scheduler.step = recording


def _largest(pairs) -> float:
    return max(float((a.float() - b.float()).abs().max()) for a, b in pairs)


def _compare_calls(mine, theirs, kwargs=("encoder_hidden_states",)) -> float:
    """Every UNet call: input, timestep and ``kwargs`` equal; the largest difference."""
    assert len(mine) == len(theirs) == STEPS
    pairs = []
    for (my_args, my_kwargs, _), (their_args, their_kwargs, _) in zip(mine, theirs, strict=True):
        pairs.append((my_args[0], their_args[0]))
        their_t = torch.as_tensor(their_args[1]).float().reshape(-1)
        assert torch.allclose(my_args[1].float(), their_t.expand_as(my_args[1]), atol=1e-6)
        pairs += [(my_kwargs[name], their_kwargs[name]) for name in kwargs]
    for a, b in pairs:
        torch.testing.assert_close(a.float(), b.float(), atol=1e-5, rtol=0)
    return _largest(pairs)


def test_sd_inpaint_runs_as_stable_diffusion_inpaint_pipeline(sd_inpaint):
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline.from_pretrained(sd_inpaint, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    ours = SDInpaintDenoiser(sd_inpaint, "cpu", FP32)
    torch.manual_seed(1)
    frame = torch.rand(1, 3, 32, 48) * 2 - 1
    mask = torch.zeros(1, 1, 32, 48, dtype=torch.bool)
    mask[..., 7:23, 13:37] = True  # edges off the latent grid: nearest, not area
    prompt = "a lighthouse"
    common = {"prompt": prompt, "image": (frame + 1) / 2, "mask_image": mask.float()}
    common |= {"guidance_scale": 1.0, "strength": 1.0, "height": 32, "width": 48}

    # the masked image each feeds the VAE
    seen = []
    hooks = [
        module.vae.encoder.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
        for module in (pipe, ours)
    ]
    pipe(**common, num_inference_steps=1, output_type="latent")
    cond = ours.condition(Inpainting(), frame, mask, prompt)
    for hook in hooks:
        hook.remove()
    torch.testing.assert_close(seen[1], seen[0], atol=1e-5, rtol=0)

    # every UNet call along the same noise, for the same masked-image latents (the pipeline
    # samples the VAE posterior, wdiff takes its mean)
    noise = torch.randn(1, 4, 32 // ours.scale, 48 // ours.scale, generator=torch.Generator())
    theirs, their_x0, ends = [], [], []
    _recording_x0(pipe.scheduler, their_x0)
    hook = _hook(pipe.unet, theirs)
    images = pipe(
        **common,
        num_inference_steps=STEPS,
        masked_image_latents=cond["latents"][:, 1:],
        latents=noise.clone(),
        output_type="pt",
        callback_on_step_end=lambda _, i, t, kw: ends.append(kw["latents"]) or kw,
    ).images
    hook.remove()
    mine = []
    hook = _hook(ours.unet, mine)
    result = sample_frame(ours, noise, ours.sigmas(STEPS), cond)
    hook.remove()
    largest = _compare_calls(mine, theirs)
    pairs = list(zip(result.predictions, their_x0, strict=True))
    for a, b in pairs:
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    with torch.no_grad():
        decoded = (ours.decode(ends[-1]) + 1) / 2
    torch.testing.assert_close(decoded, images, atol=1e-5, rtol=0)
    print(f"sd-inpaint: UNet inputs/kwargs {largest:.2e}, x0 {_largest(pairs):.2e}")


def test_sd_upscaler_runs_as_stable_diffusion_upscale_pipeline(sd_upscaler):
    from diffusers import StableDiffusionUpscalePipeline

    pipe = StableDiffusionUpscalePipeline.from_pretrained(sd_upscaler, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    ours = SDUpscaleDenoiser(sd_upscaler, "cpu", FP32, noise_level=40, noise_seed=7)
    assert ours.scale == 4
    torch.manual_seed(3)
    low = torch.rand(1, 3, 16, 24)  # [0, 1], as the pipeline takes it
    prompt = "a harbour"
    noise = torch.randn(1, 4, 16, 24, generator=torch.Generator().manual_seed(5))
    theirs, their_x0 = [], []
    _recording_x0(pipe.scheduler, their_x0)
    hook = _hook(pipe.unet, theirs)
    latents = pipe(
        prompt=prompt,
        image=low,
        noise_level=40,
        guidance_scale=1.0,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(7),  # draws the low-res frame's noise
        latents=noise.clone(),
        output_type="latent",
    ).images
    hook.remove()
    cond = ours.condition(SuperResolution(4), low * 2 - 1, None, prompt)
    mine = []
    hook = _hook(ours.unet, mine)
    result = sample_frame(ours, noise, ours.sigmas(STEPS), cond)
    hook.remove()
    largest = _compare_calls(mine, theirs, ("encoder_hidden_states", "class_labels"))
    assert int(theirs[0][1]["class_labels"][0]) == 40
    pairs = list(zip(result.predictions, their_x0, strict=True))
    for a, b in pairs:
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # decoded by the VAE at scaling factor 0.08333, as the pipeline decodes
    with torch.no_grad():
        mine_pixels = ours.decode(latents)
        theirs_pixels = pipe.vae.decode(latents / 0.08333).sample.clamp(-1, 1)
    torch.testing.assert_close(mine_pixels, theirs_pixels, atol=1e-5, rtol=0)
    print(f"sd-x4-upscaler: UNet inputs/kwargs {largest:.2e}, x0 {_largest(pairs):.2e}")


def test_sd_layouts_end_to_end_and_wrong_uses_refused(sd_inpaint, sd_upscaler, tmp_path, capfd):
    from PIL import Image

    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(16, 12))
    Image.new("L", (16, 12), 0).save(tmp_path / "mask.png")
    hole = Image.open(tmp_path / "mask.png")
    hole.paste(255, (4, 4, 12, 10))
    hole.save(tmp_path / "mask.png")
    common = ["--steps", "2", "--dtype", "fp32", "--quiet", "--no-cache", "--prompt", "a cat"]
    painted, upscaled = tmp_path / "painted.mp4", tmp_path / "up.mp4"
    inpaint = ["inpaint", str(clip), "--mask", str(tmp_path / "mask.png")]
    assert main([*inpaint, "--model", str(sd_inpaint), *common, "-o", str(painted)]) == 0
    info = open_video(painted).info
    assert (info.width, info.height, info.frame_count) == (16, 12, 3)
    upscale = ["upscale", str(clip), "--model", str(sd_upscaler), "--noise-level", "30"]
    assert main([*upscale, "--scale", "4", *common, "-o", str(upscaled)]) == 0
    info = open_video(upscaled).info
    assert (info.width, info.height, info.frame_count) == (64, 48, 3)
    capfd.readouterr()

    # wrong scale, wrong task, a layout wdiff does not run: one line each, exit 2, no output
    other = tmp_path / "sd-base"
    shutil.copytree(sd_inpaint, other)
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps(index | {"_class_name": "Kandinsky"}))
    refused = [
        ([*upscale, "--scale", "2"], "--scale 4"),
        ([*upscale[:2], "--model", str(sd_inpaint), "--scale", "4"], "wdiff inpaint"),
        ([*inpaint, "--model", str(sd_upscaler)], "wdiff upscale"),
        ([*inpaint, "--model", str(other)], "StableDiffusionUpscalePipeline"),
        ([*upscale, "--scale", "4", "--noise-level", "400"], "0 to 350"),
    ]
    for args, words in refused:
        out = tmp_path / "refused.mp4"
        assert main([*args, *common, "-o", str(out)]) == 2, args
        err = capfd.readouterr().err.strip()
        assert "\n" not in err and words in err and err.startswith("wdiff: error:"), err
        assert not out.exists()
