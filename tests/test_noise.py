"""Noise warpers: statistics over many frames, integer-shift exactness, GP kernel, fast path."""

import math

import pytest
import torch
from scipy import stats

from wdiff.flow import Motion
from wdiff.flow.ops import consistency_mask
from wdiff.noise import GPWarper, kernel, make_warper

SIZE = 128


def affine_motion(kind: str, size: int = SIZE) -> Motion:
    """Sub-pixel motion of the grid about its centre: translation, rotation 2 deg or zoom 3%."""
    ys, xs = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    c = (size - 1) / 2
    if kind == "translation":
        forward = torch.stack([torch.full_like(xs, 0.43), torch.full_like(ys, -0.27)])
        backward = -forward
    else:
        if kind == "rotation":
            angle = math.radians(2.0)
            m = torch.tensor(
                [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
            )
        else:
            m = torch.eye(2) * 1.03
        points = torch.stack([xs - c, ys - c]).reshape(2, -1)
        forward = (m @ points - points).reshape(2, size, size)
        backward = (torch.linalg.inv(m) @ points - points).reshape(2, size, size)
    forward, backward = forward[None], backward[None]
    return Motion(
        backward, consistency_mask(backward, forward), forward, consistency_mask(forward, backward)
    )


def shift_motion(dx: int, dy: int, size: int = 64) -> Motion:
    forward = torch.zeros(1, 2, size, size)
    forward[:, 0], forward[:, 1] = dx, dy
    backward = -forward
    return Motion(
        backward, consistency_mask(backward, forward), forward, consistency_mask(forward, backward)
    )


def run(method: str, motion: Motion, frames: int, seed: int = 0, channels: int = 4, **options):
    warper = make_warper(method, **options)
    size = motion.backward.shape[-1]
    state = warper.init((1, channels, size, size), seed)
    for _ in range(frames):
        state = warper.warp(state, motion)
    return warper, state, warper.sample(state)


def lag1(noise: torch.Tensor) -> float:
    centred = noise - noise.mean()
    horizontal = (centred[..., 1:] * centred[..., :-1]).mean()
    vertical = (centred[..., 1:, :] * centred[..., :-1, :]).mean()
    return float((horizontal + vertical) / 2 / centred.var())


@pytest.mark.parametrize("kind", ["translation", "rotation", "zoom"])
def test_integral_keeps_white_gaussian_noise_after_16_frames(kind):
    _, _, noise = run("integral", affine_motion(kind), 16)
    values = noise.flatten().double()
    assert abs(float(values.mean())) <= 0.02
    assert abs(float(values.std()) - 1) <= 0.02
    assert abs(lag1(noise)) <= 0.03
    assert stats.kstest(values.numpy(), "norm").pvalue > 0.01


@pytest.mark.parametrize("kind", ["translation", "rotation"])
def test_integral_noise_is_carried_along_the_motion(kind):
    warper = make_warper("integral")
    motion = affine_motion(kind)
    state = warper.init((1, 4, SIZE, SIZE), 0)
    before = warper.sample(state)
    after = warper.sample(warper.warp(state, motion))
    from wdiff.flow.ops import warp_bilinear

    expected = warp_bilinear(before, motion.backward)  # where the noise came from
    valid = motion.valid_backward.expand_as(after)
    correlation = torch.corrcoef(torch.stack([after[valid], expected[valid]]))[0, 1]
    assert correlation > 0.5  # bilinear lookups of white noise average ~0.75 of the variance


def test_bilinear_loses_variance_as_the_papers_say():
    """Bilinear warping averages neighbouring cells: after 16 sub-pixel steps the noise is far
    from unit variance and strongly correlated, so a diffusion model sees blurry noise."""
    _, _, noise = run("bilinear", affine_motion("translation"), 16)
    assert float(noise.std()) < 0.5
    assert lag1(noise) > 0.3


def test_gp_matches_its_kernel_at_lags_0_to_3():
    lags = torch.tensor([[0, 0], [1, 0], [2, 0], [3, 0], [0, 1], [0, 2], [0, 3]])
    expected = kernel(lags.double())
    for frames in (0, 4):  # fresh, and after warping along a rotation
        measured = torch.zeros(len(lags), dtype=torch.float64)
        seeds = (0, 1)
        for seed in seeds:
            _, _, noise = run("gp", affine_motion("rotation"), frames, seed=seed, channels=4)
            n = noise.double()[..., 8:-8, 8:-8]
            for row, (dx, dy) in enumerate(lags.tolist()):
                a = n[..., : n.shape[-2] - dy, : n.shape[-1] - dx]
                b = n[..., dy:, dx:]
                measured[row] += (a * b).mean() / len(seeds)
        assert torch.allclose(measured, expected, atol=0.03), (frames, measured, expected)


@pytest.mark.slow
def test_gp_fast_path_agrees_with_direct_evaluation():
    warper, state, fast = run("gp", affine_motion("rotation", 64), 3, seed=5)
    positions = state.extra.positions.permute(0, 2, 3, 1).reshape(-1, 2)
    direct = warper._bank.features.direct(positions).float().view(4, 1, 64, 64).permute(1, 0, 2, 3)
    error = fast - direct
    assert float(error.pow(2).mean().sqrt()) <= 1e-3
    assert float(error.abs().max()) <= 1e-2
    slow = GPWarper(fast=False)
    state = slow.init((1, 4, 64, 64), 5)
    for _ in range(3):
        state = slow.warp(state, affine_motion("rotation", 64))
    assert float((slow.sample(state) - fast).abs().max()) <= 1e-2


@pytest.mark.parametrize("corner", [(0.0, 0.0), (-37.25, 1e6 + 3.5)])
def test_gp_lattice_by_nufft_and_by_products_match_direct_evaluation(corner):
    """The tile lattice by finufft (CPU) and by separable products (the CUDA path) both agree
    with direct RFF evaluation to 2e-5, also far from the origin (fresh-noise planes)."""
    from wdiff.noise import RandomFourierFeatures
    from wdiff.noise.lattice import Lattice

    features = RandomFourierFeatures.sample(4, 3000, seed=3)
    x0, y0 = corner
    step, size = 0.25, 40
    by_nufft = Lattice(features).evaluate(x0, y0, step, size)
    offsets = torch.arange(size, dtype=torch.float64) * step
    by_products = Lattice(features).products(x0 + offsets, y0 + offsets)
    ys, xs = torch.meshgrid(y0 + offsets, x0 + offsets, indexing="ij")
    direct = features.direct(torch.stack([xs, ys], -1).reshape(-1, 2)).view(4, size, size)
    assert float((by_nufft - direct).abs().max()) <= 2e-5
    assert float((by_products - direct).abs().max()) <= 2e-5


def test_gp_spline_coefficients_interpolate_the_lattice_exactly():
    """The prefilter folded into the NUFFT makes the cubic B-spline pass through the lattice
    samples: read back at lattice points, the tile bank gives the direct values to 1e-4 (the
    spline between lattice points is what the 1e-3 RMS budget is spent on)."""
    warper = GPWarper()
    state = warper.init((1, 4, 16, 16), 0)
    bank = warper._bank
    points = torch.rand(500, 2, generator=torch.Generator().manual_seed(0)) * 60 - 30
    points = torch.round(points * bank.oversample) / bank.oversample
    error = bank.evaluate(points.double()) - bank.features.direct(points.double()).float()
    assert float(error.abs().max()) <= 1e-4
    assert state.noise.shape == (1, 4, 16, 16)


@pytest.mark.parametrize("method", ["gp", "integral", "nearest", "bilinear", "bilinear-gp"])
def test_integer_shift_reproduces_the_noise_exactly_inside(method):
    warper = make_warper(method)
    state = warper.init((1, 4, 64, 64), 3)
    before = warper.sample(state).clone()
    after = warper.sample(warper.warp(state, shift_motion(3, -2)))
    # content moved by (+3, -2): after[y, x] = before[y + 2, x - 3]
    torch.testing.assert_close(after[..., 4:-4, 4:-4], before[..., 6:-2, 1:-7], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "method", ["gp", "integral", "nearest", "bilinear", "bilinear-gp", "fixed", "resample"]
)
def test_same_seed_same_noise(method):
    motion = affine_motion("rotation", 48)
    a = run(method, motion, 3, seed=11)[2]
    b = run(method, motion, 3, seed=11)[2]
    c = run(method, motion, 3, seed=12)[2]
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)


def test_gp_fresh_cells_are_new_noise_and_extend_keeps_the_field():
    motion = shift_motion(5, 0)  # a 5-cell strip enters on the left
    plain = GPWarper()
    state = plain.init((1, 4, 64, 64), 2)
    before = plain.sample(state)
    after = plain.sample(plain.warp(state, motion))
    entering = ~motion.valid_backward[0, 0]
    assert entering[:, :5].all() and not entering[:, 8:].any()
    # fresh cells are unrelated to what was on screen, and have unit variance
    old = before[..., entering]
    new = after[..., entering]
    assert abs(float(torch.corrcoef(torch.stack([old.flatten(), new.flatten()]))[0, 1])) < 0.1
    assert abs(float(new.std()) - 1) < 0.1
    extended = GPWarper(extend=True)
    state = extended.init((1, 4, 64, 64), 2)
    grown = extended.sample(extended.warp(state, motion))
    # with the extension, the entering strip continues the field: the same function, read left
    direct = (
        extended._bank.features.direct(
            torch.stack(
                torch.meshgrid(torch.arange(64.0), torch.arange(-5.0, 59.0), indexing="ij")[::-1],
                -1,
            )
            .reshape(-1, 2)
            .double()
        )
        .float()
        .view(4, 64, 64)
    )
    assert float((grown[0] - direct).abs().max()) < 1e-2


def test_motion_from_a_flow_field_on_a_coarser_grid():
    from wdiff.flow import FlowField

    forward = torch.zeros(2, 2, 36, 52)
    forward[:, 0] = 8.0
    valid = torch.ones(2, 1, 36, 52, dtype=torch.bool)
    field = FlowField(forward, -forward, valid, valid)
    motion = Motion.from_field(field, 1, grid=8)
    assert motion.forward.shape == (1, 2, 5, 7)  # ceil(36/8) x ceil(52/8)
    torch.testing.assert_close(motion.forward[:, 0], torch.ones(1, 5, 7))


def test_warp_noise_command_writes_noise_and_stats(tmp_path):
    import json

    from media import make_clip
    from safetensors import safe_open

    from wdiff.cli import main
    from wdiff.video import open_video

    clip = make_clip(tmp_path / "in.mp4", frames=5, size=(64, 48), audio=False)
    out, stats_path, viz = tmp_path / "n.safetensors", tmp_path / "s.json", tmp_path / "v.mp4"
    args = ["-q", "warp-noise", str(clip), "--noise", "integral", "--grid", "8"]
    args += ["--channels", "3", "--no-cache", "--seed", "4"]
    code = main([*args, "-o", str(out), "--stats", str(stats_path), "--viz", str(viz)])
    assert code == 0
    with safe_open(str(out), framework="pt") as handle:
        noise = handle.get_tensor("noise")
        assert handle.metadata()["method"] == "integral"
    assert noise.shape == (5, 3, 6, 8) and noise.dtype == torch.float32
    rows = json.loads(stats_path.read_text())["frames"]
    assert len(rows) == 5 and rows[0]["temporal_correlation"] is None
    assert rows[1]["temporal_correlation"] > 0.5  # the pattern moves 1 px/frame: noise follows
    assert open_video(viz).info.frame_count == 5
    again = tmp_path / "again.safetensors"
    assert main([*args, "-o", str(again)]) == 0
    with safe_open(str(again), framework="pt") as handle:
        torch.testing.assert_close(handle.get_tensor("noise"), noise, atol=0, rtol=0)


def test_gp_births_reuse_their_fresh_plane_under_slow_rotation():
    """Cells entering at the edges under a slow rotation (0.5 deg and a sub-pixel shift per
    frame) continue the fresh plane of the previous births instead of taking a new plane every
    few frames (each new plane means new tiles). Before int64 keys, 20 frames took 7 planes."""
    from wdiff.noise.planes import plane_of

    size, angle = 64, math.radians(0.5)
    ys, xs = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    c = (size - 1) / 2
    rot = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = torch.stack([xs - c, ys - c]).reshape(2, -1)
    shift = torch.tensor([[0.35], [-0.2]])
    forward = (rot @ points + shift - points).reshape(1, 2, size, size)
    backward = (rot.T @ (points - shift) - points).reshape(1, 2, size, size)
    motion = Motion(
        backward, consistency_mask(backward, forward), forward, consistency_mask(forward, backward)
    )
    _, state, _ = run("gp", motion, 20)
    planes = plane_of(state.extra.positions[:, 1])
    assert int(planes.max()) == 1
    assert int((planes == 1).sum()) > 100  # births happened, and went to plane 1


def fresh_clashes(positions: torch.Tensor) -> int:
    """Pairs of cells (1, 2, h, w) in one fresh plane, within 3 cells of each other there, whose
    offset in the plane is not their offset on screen: repeated noise between unrelated places."""
    from wdiff.noise.planes import FRESH_STRIDE, plane_of

    flat = positions[0].permute(1, 2, 0).reshape(-1, 2)
    height, width = positions.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height * 1.0), torch.arange(width * 1.0), indexing="ij")
    screen = torch.stack([xs, ys], dim=-1).reshape(-1, 2).double()
    plane = plane_of(flat[:, 1])
    local = torch.stack([flat[:, 0], flat[:, 1] - plane * FRESH_STRIDE], dim=-1)[plane > 0]
    screen, plane = screen[plane > 0], plane[plane > 0]
    apart = local[:, None] - local[None]
    near = (apart.abs().amax(dim=-1) <= 3) & (plane[:, None] == plane[None])
    wrong = (apart - (screen[:, None] - screen[None])).abs().amax(dim=-1) > 1.5
    return int((near & wrong).sum()) // 2


def test_gp_births_past_the_plane_cap_clear_the_emptiest_plane():
    """Births that clash in every allowed fresh plane go to the plane with the fewest cells on
    screen, whose cells are born again with them, all at their own screen positions there; the
    other planes are untouched and nothing clashes (#18: the tiles a frame reads stay bounded)."""
    from wdiff.noise.planes import FRESH_STRIDE, rehome

    size = 8
    ys, xs = torch.meshgrid(torch.arange(size * 1.0), torch.arange(size * 1.0), indexing="ij")
    positions = torch.stack([xs, ys])[None].double()
    # plane 1: column 0, plane 2: columns 1-2, both placed where column 7's continuation lands
    positions[0, 0, :, 0] += 7
    positions[0, 1, :, 0] += FRESH_STRIDE
    positions[0, 0, :, 1:3] += 5
    positions[0, 1, :, 1:3] += 2 * FRESH_STRIDE
    births = torch.zeros(1, size, size, dtype=torch.bool)
    births[0, :, 7] = True
    assert fresh_clashes(positions) == 0

    capped = rehome(positions, births, max_planes=2)
    expected = positions.clone()
    expected[0, 0, :, 0] = xs[:, 0].double()  # column 0 back at its screen position, plane 1
    expected[0, 1, :, 7] += FRESH_STRIDE  # the births beside it
    torch.testing.assert_close(capped, expected, atol=0, rtol=0)
    assert fresh_clashes(capped) == 0

    roomy = rehome(positions, births, max_planes=3)  # a third plane: nobody is moved
    torch.testing.assert_close(roomy[..., :7], positions[..., :7], atol=0, rtol=0)
    assert (roomy[0, 1, :, 7] - positions[0, 1, :, 7] == 3 * FRESH_STRIDE).all()
    assert fresh_clashes(roomy) == 0


def test_gp_max_planes_bounds_the_fresh_planes_of_a_long_stretch():
    """A steady stretch wears cells out every frame, and each frame's births clash with the last
    frame's: 12 frames fill 8 fresh planes without a cap, 2 with ``max_planes=2``, and the noise
    stays unit-variance and as correlated as without the cap (tolerances 0.05 and 0.03)."""
    from wdiff.noise.planes import plane_of

    motion = squeeze_motion(1.1)
    _, free, uncapped = run("gp", motion, 12, seed=3, max_planes=1000)
    _, capped, noise = run("gp", motion, 12, seed=3, max_planes=2)
    assert int(plane_of(free.extra.positions[:, 1]).max()) > 2
    assert int(plane_of(capped.extra.positions[:, 1]).max()) == 2
    assert abs(float(noise.std()) - 1) < 0.05
    assert abs(lag1(noise) - lag1(uncapped)) < 0.03
    again = run("gp", motion, 12, seed=3, max_planes=2)[2]
    torch.testing.assert_close(again, noise, atol=0, rtol=0)
    assert GPWarper().max_planes == 6


def squeeze_motion(factor: float, size: int = 64) -> Motion:
    """Each frame reads frame j-1 at ``factor`` times the distance from the centre, vertically:
    an object moving so that the backward flow compresses the position map (factor < 1)."""
    ys = torch.arange(size * 1.0)[:, None].expand(size, size)
    c = (size - 1) / 2
    backward = torch.stack([torch.zeros_like(ys), (factor - 1) * (ys - c)])[None]
    forward = torch.stack([torch.zeros_like(ys), (1 / factor - 1) * (ys - c)])[None]
    return Motion(
        backward, consistency_mask(backward, forward), forward, consistency_mask(forward, backward)
    )


def vertical_lag1(noise: torch.Tensor) -> float:
    centred = noise - noise.mean()
    return float((centred[..., 1:, :] * centred[..., :-1, :]).mean() / centred.var())


def test_gp_max_stretch_keeps_compressed_noise_unit_scale():
    from wdiff.noise.gp import distorted

    motion = squeeze_motion(0.9)
    _, first, start = run("gp", motion, 0, seed=3)
    _, plain, squeezed = run("gp", motion, 8, seed=3, max_stretch=None)  # spacing 0.43 cells
    _, fixed, kept = run("gp", motion, 8, seed=3)  # the default: max_stretch=1.5
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert distorted(plain.extra.positions, 1.5)[0][inner[2:]].float().mean() > 0.9
    assert not distorted(fixed.extra.positions, 1.5).any()
    assert not distorted(first.extra.positions, 1.01).any()
    # without the option the noise is over-correlated down the columns (streaks); with it, not
    assert vertical_lag1(squeezed[inner]) > vertical_lag1(start[inner]) + 0.3
    assert abs(vertical_lag1(kept[inner]) - vertical_lag1(start[inner])) < 0.1
    assert abs(float(kept.std()) - 1) < 0.1
    assert GPWarper().max_stretch == 1.5


def test_gp_max_stretch_is_deterministic_and_resumes():
    motion = squeeze_motion(0.9, 48)
    warper, state, _ = run("gp", motion, 5, seed=5, max_stretch=1.5)
    again = run("gp", motion, 5, seed=5, max_stretch=1.5)[2]
    torch.testing.assert_close(warper.sample(state), again, atol=0, rtol=0)
    resumed = GPWarper(max_stretch=1.5)
    loaded = resumed.load_state(warper.state_tensors(state), state.frame, state.seed)
    straight = warper.sample(warper.warp(state, motion))
    torch.testing.assert_close(resumed.sample(resumed.warp(loaded, motion)), straight)


def test_gp_spill_file_takes_at_most_half_the_free_space(monkeypatch):
    """The spill file may use half the temporary folder's free space (seen when it is opened)
    and no more, so a long clip cannot fill the disk the output is written to (#18): with room
    for 3 tiles, the others are built again when read, with the same bits."""
    from collections import namedtuple

    from wdiff.noise import tiles
    from wdiff.noise.features import RandomFourierFeatures
    from wdiff.noise.tiles import TileBank

    features = RandomFourierFeatures.sample(2, 200, 0, 2 / math.pi, 2.0, "cpu")
    bank = TileBank(features, tile=8, scratch=4, max_atlas=4)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(tiles.shutil, "disk_usage", lambda path: usage(0, 0, 7 * bank._tile_bytes))
    positions = torch.stack(  # one position in the middle of each of 8 tiles in a row
        [torch.arange(8, dtype=torch.float64) * 8 + 4, torch.full((8,), 4.0, dtype=torch.float64)],
        dim=1,
    ).repeat_interleave(4, dim=0)  # 4 points a tile: each counts as built at once
    first = bank.evaluate(positions)
    again = bank.evaluate(positions.flip(0)).flip(1)
    assert len(bank._file_slots) == 3 and bank.spill
    # the atlas kept the first 4 tiles read (the file took 3 of them); the last 4 went through
    # the scratch atlas and found the file full, so they were built again
    assert bank.builds == 8 + 4
    torch.testing.assert_close(again, first, atol=0, rtol=0)


@pytest.mark.slow
def test_gp_tile_bank_memory_is_bounded_and_tiles_read_again_are_the_same(tmp_path, monkeypatch):
    """Under a pan the noise's positions cover new ground every frame, so ever more tiles count
    as built, and the bank used to hold all of them (#18): its atlas now holds the tiles the
    last frame read, so it stops growing while the tiles built go on. A tile read again after
    leaving it comes back bit for bit, from the spill file or built again: banks with room for
    fewer tiles than a frame reads (the rest through a 4-tile scratch atlas every frame) give
    exactly the same noise, with the spill file (each tile built once), without it, and when
    the disk refuses it, as does one whose atlas is capped (``max_atlas``) below what the
    frame's positions would give it, and one whose spill file is capped (``max_spill``) at 40
    tiles, which builds the rest again; so does a warper resumed halfway from its state."""
    from wdiff.noise import tiles
    from wdiff.noise.tiles import TileBank

    motion = shift_motion(6, 2, 48)  # strips enter on the left and at the top every frame
    warper = GPWarper(tile=8)
    state = warper.init((1, 4, 48, 48), 4)
    bank = warper._bank
    small = {"tile": 8, "room": 0.5, "scratch": 4}  # room for 18 tiles: 0.5 per 64 positions
    spilled, rebuilt = (
        TileBank(bank.features, **small),
        TileBank(bank.features, **small, spill=False),
    )
    (tmp_path / "refusing").touch()

    def refusing_file():  # a file the bank cannot write: as a full disk, an OSError
        return (tmp_path / "refusing").open("rb", buffering=0)

    refused = TileBank(bank.features, **small)  # its spill file cannot be written
    capped = TileBank(bank.features, tile=8, scratch=4, max_atlas=8)  # room, but at most 8
    full = TileBank(bank.features, **small)
    full.max_spill = 40 * full._tile_bytes
    noises, sizes, halfway = [], {}, None
    for frame in range(30):
        if frame:
            state = warper.warp(state, motion)
        flat = state.extra.positions.permute(0, 2, 3, 1).reshape(-1, 2)
        for other in (spilled, rebuilt, refused, capped, full):
            with monkeypatch.context() as patch:
                if other is refused:
                    patch.setattr(tiles, "_scratch_file", refusing_file)
                again = other.evaluate(flat).view(4, 1, 48, 48).permute(1, 0, 2, 3)
            torch.testing.assert_close(again, state.noise, atol=0, rtol=0)
        noises.append(state.noise)
        sizes[frame] = (len(bank.built), bank.atlas.shape)
        if frame == 10:
            halfway = (warper.state_tensors(state), state.frame)
    (built_then, atlas_then), (built_now, atlas_now) = sizes[10], sizes[29]
    assert built_now > 1.8 * built_then
    assert atlas_now == atlas_then
    assert spilled.capacity == 18 and spilled.atlas.shape[0] == 2 * spilled.size
    assert spilled.builds == len(spilled.built) == built_now  # each tile built once
    assert rebuilt.builds > 3 * built_now and refused.builds == rebuilt.builds
    assert not refused.spill
    assert full.spill and len(full._file_slots) + len(full._file_free) == 40
    assert spilled.builds < full.builds < rebuilt.builds
    assert capped.capacity == 8 and capped.atlas.shape[0] == capped.size
    resumed = GPWarper(tile=8)
    state = resumed.load_state(halfway[0], halfway[1], 4)
    for frame in range(11, 30):
        state = resumed.warp(state, motion)
        torch.testing.assert_close(resumed.sample(state), noises[frame], atol=0, rtol=0)


@pytest.mark.parametrize("position", [(252.0, -1.693260022068627e-16), (-1e-17, 40.5)])
def test_gp_tile_bank_reads_a_position_a_rounding_error_below_a_tile_edge(position):
    """A position a hair below a tile's edge (here one that a real 8x upscale of vtest.avi
    produced) has ``p - floor(p / tile) * tile == tile`` in float64: its spline taps then
    reached one row or column past the tile, and past the atlas when the tile was in its last
    row, which stopped the whole upscale with an IndexError. It must read as the direct sum."""
    from wdiff.noise.tiles import TileBank

    warper = GPWarper(tile=32)
    warper.init((1, 3, 8, 8), 2)
    bank = TileBank(warper._bank.features, tile=32, direct_below=0)
    points = torch.tensor([position], dtype=torch.float64)
    fast = bank.evaluate(points)
    direct = bank.features.direct(points).float()
    assert float((fast - direct).abs().max()) <= 1e-3
