"""A folder's own scheduler, run as its diffusers pipeline runs it: for tiny random SDXL
inpainting folders (9-channel UNet) saved with Euler ('leading'), DDIM, DPM-Solver++ and EDM
schedulers (the Playground v2.5 layout: EDM DPM-Solver, sigma_data 0.5, the VAE's
latents_mean/std), StableDiffusionXLInpaintPipeline's UNet calls (captured by a forward hook)
equal wdiff's along the same noise: timesteps, inputs, x0 and, for first-order schedulers,
the final latents. Also: fp16 variant folders load, with nothing on stderr."""

from __future__ import annotations

import pytest
import torch
from sdxl_tiny import make_tiny_sdxl

from wdiff.diffusion.sampler import sample_frame
from wdiff.models.sdxl import SDXLDenoiser, SDXLOptions
from wdiff.tasks import Inpainting

pytestmark = pytest.mark.slow
STEPS = 4
BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


def _schedulers():
    import diffusers

    return {
        "euler": diffusers.EulerDiscreteScheduler(
            **BETAS, steps_offset=1, timestep_spacing="leading"
        ),
        "ddim": diffusers.DDIMScheduler(
            **BETAS, steps_offset=1, clip_sample=False, set_alpha_to_one=True
        ),
        "ddim_v": diffusers.DDIMScheduler(
            **BETAS, clip_sample=False, prediction_type="v_prediction", timestep_spacing="trailing"
        ),
        "dpm": diffusers.DPMSolverMultistepScheduler(**BETAS),
        "edm_euler": diffusers.EDMEulerScheduler(sigma_data=0.5),
        "playground": diffusers.EDMDPMSolverMultistepScheduler(
            sigma_data=0.5, sigma_max=80.0, sigma_min=0.002, solver_order=2
        ),
    }


FIRST_ORDER = ("euler", "ddim", "ddim_v", "edm_euler")


def _hook(module, calls):
    def hook(_, args, kwargs, output):
        calls.append((args, kwargs, output))

    return module.register_forward_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("name", list(_schedulers()))
def test_the_folders_scheduler_runs_as_its_pipeline_runs_it(name, tmp_path):
    from diffusers import StableDiffusionXLInpaintPipeline

    folder = make_tiny_sdxl(
        tmp_path, in_channels=9, name=name, scheduler=_schedulers()[name],
        latents_stats=name == "playground",
    )  # fmt: skip
    ours = SDXLDenoiser(folder, "inpaint", "cpu", SDXLOptions(dtype="fp32"))
    assert type(ours.scheduler).__name__ == type(_schedulers()[name]).__name__
    torch.manual_seed(1)
    frame = torch.rand(1, 3, 32, 48) * 2 - 1
    mask = torch.zeros(1, 1, 32, 48, dtype=torch.bool)
    mask[..., 8:24, 16:40] = True
    cond = ours.condition(Inpainting(), frame, mask, "a red chair")
    grid = (32 // ours.scale, 48 // ours.scale)
    noise = torch.randn(1, 4, *grid, generator=torch.Generator().manual_seed(2))

    pipe = StableDiffusionXLInpaintPipeline.from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    theirs, their_x0 = [], []
    step = pipe.scheduler.step

    def recording_step(*args, **kwargs):
        out = step(*args, **kwargs)
        their_x0.append(out[1] if len(out) > 1 else None)
        return out

    pipe.scheduler.step = recording_step
    hook = _hook(pipe.unet, theirs)
    ends = []

    def keep_latents(_, step, timestep, tensors):
        ends.append(tensors["latents"])
        return tensors

    images = pipe(
        prompt="a red chair",
        image=(frame + 1) / 2,
        mask_image=mask.float(),
        masked_image_latents=cond["latents"][:, 1:],
        latents=noise.clone(),
        guidance_scale=1.0,
        strength=1.0,
        num_inference_steps=STEPS,
        height=32,
        width=48,
        output_type="pt",
        callback_on_step_end=keep_latents,
    ).images
    their_latents = ends[-1]
    hook.remove()

    mine = []
    sigmas = ours.sigmas(STEPS)
    hook = _hook(ours.unet, mine)
    result = sample_frame(ours, noise, sigmas, cond)
    hook.remove()

    assert len(mine) == len(theirs) == STEPS
    their_t = torch.stack([torch.as_tensor(call[0][1]).float().reshape(-1)[0] for call in theirs])
    my_t = torch.stack([call[0][1].float()[0] for call in mine])
    torch.testing.assert_close(my_t, their_t, atol=1e-6, rtol=0)
    # the first two UNet inputs (the first x, and the first step: first order for all)
    compared = STEPS if name in FIRST_ORDER else 2
    pairs = [(m[0][0], t[0][0]) for m, t in zip(mine[:compared], theirs[:compared], strict=True)]
    pairs += [
        (m, t)
        for m, t in zip(result.predictions[:compared], their_x0[:compared], strict=True)
        if t is not None
    ]
    for a, b in pairs:
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    if name in FIRST_ORDER:
        torch.testing.assert_close(result.x0, their_latents, atol=1e-5, rtol=0)
    # decoded as the pipeline decodes (the VAE's latents_mean/std for the Playground layout)
    with torch.no_grad():
        pixels = (ours.decode(their_latents) + 1) / 2
    torch.testing.assert_close(pixels, images, atol=1e-5, rtol=0)
    largest = max(float((a - b).abs().max()) for a, b in pairs)
    print(f"{name}: UNet inputs and x0 over {compared} steps {largest:.2e}")


def test_an_fp16_variant_folder_loads_and_runs_with_nothing_on_stderr(tmp_path, capfd):
    from media import make_clip
    from PIL import Image

    from wdiff.cli import main

    folder = make_tiny_sdxl(tmp_path, in_channels=9, name="fp16", variant="fp16")
    weights = sorted(p.name for p in folder.rglob("*.safetensors"))
    assert weights and all(".fp16." in name for name in weights)
    clip = make_clip(tmp_path / "low.mp4", frames=2, size=(16, 12))
    Image.new("L", (16, 12), 255).save(tmp_path / "mask.png")
    capfd.readouterr()
    args = ["inpaint", str(clip), "--mask", str(tmp_path / "mask.png"), "--model", str(folder)]
    args += ["--steps", "1", "--dtype", "fp32", "--quiet", "--no-cache"]
    assert main([*args, "-o", str(tmp_path / "out.mp4")]) == 0
    out, err = capfd.readouterr()
    assert err == "" and out.strip().endswith("out.mp4")


def test_variant_picks_the_weights_and_a_missing_one_is_one_line(tmp_path, capfd):
    """--variant fp16 loads the *.fp16.* weights of a folder holding both (here a UNet whose
    fp16 copy has conv_out zeroed, so the outputs differ); auto loads the plain ones; a
    variant the folder lacks exits 2 with one line naming it."""
    from media import make_clip
    from PIL import Image
    from safetensors.torch import load_file, save_file

    from wdiff.cli import main

    folder = make_tiny_sdxl(tmp_path, in_channels=9, name="both")
    unet = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights = load_file(unet)
    weights = {k: (v * 0 if k.startswith("conv_out") else v) for k, v in weights.items()}
    save_file(weights, folder / "unet" / "diffusion_pytorch_model.fp16.safetensors")
    clip = make_clip(tmp_path / "low.mp4", frames=2, size=(16, 12))
    Image.new("L", (16, 12), 255).save(tmp_path / "mask.png")
    args = ["inpaint", str(clip), "--mask", str(tmp_path / "mask.png"), "--model", str(folder)]
    args += ["--steps", "1", "--dtype", "fp32", "--quiet", "--no-cache", "--crf", "0"]
    outputs = {}
    for variant in ("auto", "fp16"):
        outputs[variant] = tmp_path / f"{variant}.mp4"
        assert main([*args, "--variant", variant, "-o", str(outputs[variant])]) == 0
    assert outputs["auto"].read_bytes() != outputs["fp16"].read_bytes()
    capfd.readouterr()
    assert main([*args, "--variant", "bf16", "-o", str(tmp_path / "none.mp4")]) == 2
    err = capfd.readouterr().err.strip()
    assert "\n" not in err and "no bf16 weights" in err and "--variant" in err
    assert not (tmp_path / "none.mp4").exists()
