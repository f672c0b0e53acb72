"""Sampling core: the PF-ODE sampler, equivariance self-guidance, batch-consistent sampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from denoisers import ConvDenoiser, GaussianDenoiser, SkipDenoiser

from wdiff.diffusion import (
    Anchor,
    BatchConsistentSettings,
    GuidanceSettings,
    SelfGuide,
    Window,
    discrete_sigmas,
    euler_step,
    karras_sigmas,
    sample_batch_consistent,
    sample_frame,
    sample_video,
)
from wdiff.diffusion.guidance import warp_residual_energy
from wdiff.flow import Motion
from wdiff.flow.ops import warp_bilinear
from wdiff.metrics import warping_error
from wdiff.noise import kernel, make_warper
from wdiff.tasks import Inpainting, SuperResolution

SIZE = 48


def shift_motion(dx: int, dy: int, height: int = SIZE, width: int = SIZE) -> Motion:
    """Content moving by (dx, dy) cells per frame: frame_j(x) = frame_{j-1}(x - (dx, dy))."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    forward = torch.tensor([dx, dy], dtype=torch.float32).view(1, 2, 1, 1)
    forward = forward.expand(1, 2, height, width).clone()

    def inside(x, y):
        return ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1))[None, None]

    return Motion(-forward, inside(xs - dx, ys - dy), forward, inside(xs + dx, ys + dy))


def frame_errors(results, motion: Motion, valid: torch.Tensor | None = None) -> list[float]:
    valid = motion.valid_forward if valid is None else valid
    return [
        float(warping_error(results[j].x0, results[j - 1].x0, motion.forward, valid))
        for j in range(1, len(results))
    ]


def run_video(
    denoiser,
    frames: int,
    guidance: GuidanceSettings | None,
    steps: int = 50,
    seed: int = 1,
    motion: Motion | None = None,
    method: str = "gp",
):
    motion = motion or shift_motion(2, 1)
    inputs = [(None, None)] + [(None, motion)] * (frames - 1)
    warper = make_warper(method, extend=True) if method == "gp" else make_warper(method)
    shape = (1, denoiser.channels, SIZE, SIZE)
    return list(sample_video(denoiser, warper, inputs, shape, karras_sigmas(steps), seed, guidance))


def pinned_pattern(amplitude: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    pattern = F.avg_pool2d(torch.randn(1, 3, SIZE, SIZE, generator=gen), 5, 1, 2)
    return pattern * amplitude / pattern.std()


def test_schedules_descend_to_zero():
    from diffusers import EulerDiscreteScheduler

    karras = karras_sigmas(10)
    assert karras.shape == (11,) and karras[-1] == 0
    assert torch.all(karras[:-1] > karras[1:])
    assert karras[0] == pytest.approx(80.0) and karras[-2] == pytest.approx(0.002)
    scheduler = EulerDiscreteScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        timestep_spacing="leading",
        steps_offset=1,
    )
    discrete = discrete_sigmas(scheduler, 25)
    assert discrete.shape == (26,) and discrete[-1] == 0 and torch.all(discrete[:-1] > discrete[1:])


def test_euler_step_moves_toward_prediction():
    x, prediction = torch.full((1, 1, 2, 2), 4.0), torch.zeros(1, 1, 2, 2)
    moved = euler_step(x, prediction, torch.tensor(2.0), torch.tensor(1.0))
    assert torch.allclose(moved, torch.full_like(x, 2.0))  # halfway, as sigma halves
    assert torch.equal(euler_step(x, prediction, torch.tensor(2.0), torch.tensor(0.0)), prediction)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("solver", "steps", "covariance_tolerance"), [("euler", 50, 0.15), ("heun", 50, 0.07)]
)
def test_gaussian_data_under_gp_noise(solver, steps, covariance_tolerance):
    """x0 ~ N(m, S) on 8x8 images, noise ~ GP kernel K: D is the exact posterior mean, so the
    ODE's samples must be N(m, S). 8000 samples: the mean's sampling std is <= 0.006 (bound 0.03);
    the relative Frobenius error of the covariance is ~0.03 from sampling alone; Euler adds its
    O(1/steps) discretisation bias (measured 0.11 at 50 steps; Heun 0.04)."""
    height = width = 8
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    positions = torch.stack([xs.flatten(), ys.flatten()], -1).double()
    lag = positions[:, None] - positions[None]
    noise_cov = kernel(lag)
    eye = torch.eye(height * width, dtype=torch.float64)
    data_cov = 0.25 * torch.exp(-(lag**2).sum(-1) / (2 * 1.5**2)) + 0.01 * eye
    mean = torch.linspace(-0.5, 0.5, height * width, dtype=torch.float64)
    denoiser = GaussianDenoiser(mean, data_cov, noise_cov)
    count = 8000
    gen = torch.Generator().manual_seed(0)
    root = torch.linalg.cholesky(noise_cov + 1e-9 * eye)
    white = torch.randn(count, height * width, generator=gen, dtype=torch.float64)
    noise = (white @ root.T).float().view(count, 1, height, width)

    samples = (
        sample_frame(
            denoiser, noise, karras_sigmas(steps), None, solver=solver, keep_predictions=False
        )
        .x0.double()
        .flatten(1)
    )

    assert float((samples.mean(0) - mean).abs().max()) <= 0.03
    covariance = torch.cov(samples.T)
    relative = float((covariance - data_cov).norm() / data_cov.norm())
    assert relative <= covariance_tolerance


def test_equivariant_denoiser_needs_no_guidance():
    """A convolution is translation-equivariant; with GP noise carried by integer shifts the
    frames are exact shifts of each other, away from the border (the padding is not equivariant:
    its effect reaches one cell inward per step, so 10 steps leave a 10-cell margin)."""
    steps, margin = 10, 12
    motion = shift_motion(2, 1)
    results = run_video(ConvDenoiser(), 3, None, steps=steps, motion=motion)
    interior = motion.valid_forward.clone()
    interior[..., :margin, :] = interior[..., -margin:, :] = False
    interior[..., :, :margin] = interior[..., :, -margin:] = False
    assert max(frame_errors(results, motion, interior)) < 1e-9
    assert min(frame_errors(results, motion)) > 1e-4  # the border does differ: the test can fail


@pytest.mark.parametrize("mode", ["full", "cheap"])
def test_guidance_cuts_warping_error_of_non_equivariant_denoiser(mode):
    """A pattern pinned to the screen breaks equivariance; lambda = 1 pulls each frame onto the
    previous one at least 10x closer (measured: ~1e-11 against ~5e-2), frame 0 untouched."""
    denoiser = ConvDenoiser(pinned=pinned_pattern(0.2))
    motion = shift_motion(2, 1)
    plain = run_video(denoiser, 4, GuidanceSettings(strength=0.0), motion=motion)
    guided = run_video(denoiser, 4, GuidanceSettings(strength=1.0, mode=mode), motion=motion)
    assert torch.equal(plain[0].x0, guided[0].x0)
    for before, after in zip(
        frame_errors(plain, motion), frame_errors(guided, motion), strict=True
    ):
        assert before > 1e-2
        assert after * 10 <= before


def test_full_guidance_under_no_grad_is_the_same():
    """A caller's ``torch.no_grad()`` (inference code often wraps everything in it) must not
    break full guidance, which back-propagates through the network."""
    denoiser = ConvDenoiser(pinned=pinned_pattern(0.2))
    guidance = GuidanceSettings(strength=1.0, mode="full")
    free = run_video(denoiser, 3, guidance, steps=8)
    with torch.no_grad():
        wrapped = run_video(denoiser, 3, guidance, steps=8)
    for a, b in zip(free, wrapped, strict=True):
        assert torch.equal(a.x0, b.x0)


def test_guidance_toward_first_frame_runs_and_stays_consistent():
    denoiser = ConvDenoiser(pinned=pinned_pattern(0.2))
    motion = shift_motion(1, 0)
    both = GuidanceSettings(strength=1.0, first_strength=1.0)
    results = run_video(denoiser, 4, both, motion=motion)
    plain = run_video(denoiser, 4, GuidanceSettings(strength=0.0), motion=motion)
    # frame 3 against frame 0 along the chained flow (3 cells right)
    chained = shift_motion(3, 0)
    drift = warping_error(results[3].x0, results[0].x0, chained.forward, chained.valid_forward)
    drift_plain = warping_error(plain[3].x0, plain[0].x0, chained.forward, chained.valid_forward)
    assert float(drift) * 10 <= float(drift_plain)


def test_first_frame_guidance_alone_pulls_frame_one_too():
    """With --guidance 0 and --first-guidance > 0, frame 1 is pulled toward frame 0 like the
    later frames (it used to be skipped, as if the previous-frame pull covered it)."""
    denoiser = ConvDenoiser(pinned=pinned_pattern(0.2))
    motion = shift_motion(1, 0)
    plain = run_video(denoiser, 2, GuidanceSettings(strength=0.0), motion=motion)
    first = run_video(
        denoiser, 2, GuidanceSettings(strength=0.0, first_strength=1.0), motion=motion
    )
    before, after = frame_errors(plain, motion)[0], frame_errors(first, motion)[0]
    assert after * 10 <= before


def test_occluded_cells_do_not_pull():
    """The reference's values on invalid cells never reach the gradient."""
    gen = torch.Generator().manual_seed(5)
    prediction = torch.randn(1, 3, 16, 16, generator=gen)
    x = prediction.clone().requires_grad_(True)
    reference = torch.randn(1, 3, 16, 16, generator=gen)
    valid = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    valid[..., 4:10, 3:12] = False
    changed = torch.where(valid, reference, torch.full_like(reference, 1e3))
    flow = torch.zeros(1, 2, 16, 16)
    gradients = []
    for ref in (reference, changed):
        guide = SelfGuide(GuidanceSettings(), [Anchor([ref], flow, valid, 1.0)], 1, 0.5)
        gradients.append(guide.gradient(x, x * 1.0, torch.tensor(1.0), 0))
    assert gradients[0].abs().sum() > 0
    assert torch.equal(gradients[0], gradients[1])
    # invalid cells get nothing but grid_sample's rounding from their valid neighbours
    hidden = gradients[0][valid.expand_as(x).logical_not()].abs().max()
    assert hidden <= 1e-5 * gradients[0].abs().max()


def test_cheap_guidance_is_exact_for_the_skip_denoiser():
    """Cheap mode replaces dh/dx by c_skip(sigma) I; for D = c_skip x that is exact."""
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(1, 3, 12, 12, generator=gen).requires_grad_(True)
    reference = torch.randn(1, 3, 12, 12, generator=gen)
    flow = torch.full((1, 2, 12, 12), 0.4)
    valid = torch.ones(1, 1, 12, 12, dtype=torch.bool)
    sigma, denoiser = torch.tensor(0.7), SkipDenoiser()
    out = {}
    for mode in ("full", "cheap"):
        guide = SelfGuide(
            GuidanceSettings(mode=mode),
            [Anchor([reference], flow, valid, 1.0)],
            1,
            denoiser.sigma_data,
        )
        with torch.enable_grad():
            denoised = denoiser(x, sigma, None)
        out[mode] = guide.gradient(x, denoised, sigma, 0)
    assert torch.allclose(out["full"], out["cheap"], atol=1e-6)


def test_same_seed_same_video():
    denoiser = ConvDenoiser(pinned=pinned_pattern(0.2))
    first = run_video(denoiser, 3, GuidanceSettings(), steps=10, seed=4)
    again = run_video(denoiser, 3, GuidanceSettings(), steps=10, seed=4)
    other = run_video(denoiser, 3, GuidanceSettings(), steps=10, seed=5)
    assert all(torch.equal(a.x0, b.x0) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[2].x0, other[2].x0)


@pytest.mark.parametrize("method", ["integral", "nearest"])
def test_other_noise_methods_feed_the_sampler(method):
    results = run_video(ConvDenoiser(), 3, GuidanceSettings(mode="cheap"), steps=5, method=method)
    assert len(results) == 3 and all(torch.isfinite(r.x0).all() for r in results)


def test_batch_consistent_super_resolution_meets_the_data():
    """After CG, every output frame downsampled equals its low-res input (A^T A has one nonzero
    eigenvalue, so CG is exact in one step); windows of 4 stream a 6-frame clip."""
    task = SuperResolution(4)
    gen = torch.Generator().manual_seed(7)
    truth = F.avg_pool2d(torch.rand(6, 3, 32, 32, generator=gen) * 2 - 1, 3, 1, 1)
    low = task.degrade(truth)
    windows = [Window(None, len(chunk), task.operator(), chunk) for chunk in low.split(4)]
    settings = BatchConsistentSettings(window=4, cg_steps=3, eta=0.15)
    frames = list(
        sample_batch_consistent(
            ConvDenoiser(), windows, (3, 32, 32), karras_sigmas(10), 2, settings
        )
    )
    assert len(frames) == 6
    output = torch.cat(frames)
    residual = (task.degrade(output) - low).norm() / low.norm()
    assert float(residual) < 1e-5
    # without data consistency the same sampler does not meet the data
    loose = [Window(None, len(chunk), None, None) for chunk in low.split(4)]
    free = torch.cat(
        list(
            sample_batch_consistent(
                ConvDenoiser(), loose, (3, 32, 32), karras_sigmas(10), 2, settings
            )
        )
    )
    assert float((task.degrade(free) - low).norm() / low.norm()) > 0.1


def test_batch_consistent_inpainting_keeps_known_pixels_and_shares_noise():
    task = Inpainting()
    gen = torch.Generator().manual_seed(8)
    truth = (torch.rand(1, 3, 24, 24, generator=gen) * 2 - 1).expand(3, -1, -1, -1)  # static
    mask = torch.zeros(3, 1, 24, 24, dtype=torch.bool)
    mask[..., 6:18, 6:18] = True
    observed = task.degrade(truth, mask)
    window = Window(None, 3, task.operator(mask), observed)
    settings = BatchConsistentSettings(cg_steps=2)
    output = torch.cat(
        list(
            sample_batch_consistent(
                ConvDenoiser(), [window], (3, 24, 24), karras_sigmas(8), 3, settings
            )
        )
    )
    known = (~mask).expand_as(truth)
    assert torch.allclose(output[known], truth[known], atol=1e-5)
    # a static clip with every frame on the same noise comes out as one frame repeated
    assert torch.allclose(output[0], output[2], atol=1e-5)
    assert (output[0] - truth[0]).abs()[mask[0].expand(3, -1, -1)].mean() > 0.05  # hole filled


def test_guidance_compares_a_subpixel_shift_without_blurring_it():
    """A detailed pattern moved by (0.5, 0.3) cells, and the flow that says so: the guidance's
    residual is what its warp loses. Bilinear sampling halves the finest detail at half a cell,
    and the guidance would then sharpen the prediction to make up for it (the still bunny's
    warping error doubled at lambda 2); the guidance's warp must lose under a tenth of that."""
    dx, dy = 0.5, 0.3
    cells = torch.arange(SIZE, dtype=torch.float64)
    ys, xs = torch.meshgrid(cells, cells, indexing="ij")

    def pattern(x, y):
        waves = [(0.05, 0.02, 0.0), (0.11, -0.07, 1.0), (0.19, 0.13, 2.0), (0.24, 0.21, 0.5)]
        return sum(torch.sin(2 * torch.pi * (fx * x + fy * y) + phase) for fx, fy, phase in waves)

    anchor = pattern(xs, ys)[None, None].float()
    later = pattern(xs - dx, ys - dy)[None, None].float()
    flow = torch.tensor([dx, dy]).view(1, 2, 1, 1).expand(1, 2, SIZE, SIZE).clone()
    interior = torch.zeros(1, 1, SIZE, SIZE, dtype=torch.bool)
    interior[..., 4:-4, 4:-4] = True
    energy = float(warp_residual_energy(later, anchor, flow, interior)[0])
    bilinear = warp_bilinear(later, flow)
    bilinear_energy = float(((bilinear - anchor) ** 2 * interior).sum())
    assert bilinear_energy > 10.0  # the pattern's detail is there to lose
    assert energy <= 0.1 * bilinear_energy
