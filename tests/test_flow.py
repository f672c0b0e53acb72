"""Flow accuracy on moved photographs, validity masks, ops, cache, RAFT loading, CLI output."""

import json
import time

import numpy as np
import pytest
import torch
from media import make_clip
from PIL import Image
from skimage import data

from wdiff import flow as flows
from wdiff.cli import main
from wdiff.errors import WdiffError
from wdiff.synthetic import motion, moved_photo
from wdiff.video import open_video

CROP = 192  # frames are the centre CROP x CROP of the moved 512x512 photograph
BORDER = 10


MOTIONS = {"translation": 1.37, "rotation": 1.2, "zoom": 0.025}


def moved_photo_clip(folder, kind: str, frames: int = 4):
    """A PNG clip of the astronaut moved by ``kind`` per frame, and the true flow."""
    step = motion(kind, MOTIONS[kind], (256, 256))
    clip, truth = moved_photo(data.astronaut(), step, frames, CROP)
    folder.mkdir()
    for index, frame in enumerate(clip):
        Image.fromarray(frame).save(folder / f"{index:03d}.png")
    return folder, truth


@pytest.fixture(scope="module", params=["translation", "rotation", "zoom"])
def moved_clip(request, tmp_path_factory):
    folder, truth = moved_photo_clip(tmp_path_factory.mktemp("clip") / "frames", request.param)
    reader = open_video(folder)
    field, _ = flows.estimate_video_flows(reader, flows.make_estimator("dis"))
    return reader, field.in_memory(), truth


def interior(tensor):
    return tensor[..., BORDER:-BORDER, BORDER:-BORDER]


def test_dis_end_point_error_is_subpixel(moved_clip):
    _, field, truth = moved_clip
    valid = interior(field.valid_forward[:, 0])
    error = interior((field.forward - truth).norm(dim=1))
    assert valid.float().mean() > 0.9
    assert float(error[valid].mean()) <= 0.3


def test_backward_flow_is_the_inverse_motion(moved_clip):
    _, field, truth = moved_clip
    # backward[j](y) = x where y = x + truth(x); to first order -truth, within half a pixel
    error = interior((field.backward + truth).norm(dim=1))
    assert float(error[interior(field.valid_backward[:, 0])].mean()) <= 0.5


def test_out_of_frame_pixels_are_invalid(moved_clip):
    _, field, truth = moved_clip
    leaving = ~flows.inside_frame(truth[None].expand_as(field.forward))
    if leaving.sum() == 0:
        pytest.skip("no pixel leaves the frame in this motion")
    caught = (~field.valid_forward)[leaving].float().mean()
    assert caught >= 0.95


def test_edge_pixels_of_a_still_scene_stay_valid():
    """A landing point less than half a pixel beyond the outermost pixel centres is inside (its
    nearest pixel is); further out it is not. Before, a still scene's estimated 0.01 px of
    outward flow made the whole frame edge invalid, and fresh noise flickered there (#19)."""
    height, width = 6, 9
    flow = torch.zeros(1, 2, height, width)
    flow[:, 0, :, 0], flow[:, 0, :, -1] = -0.01, 0.01  # left and right edges drift outward
    flow[:, 1, 0, 1:-1], flow[:, 1, -1, 1:-1] = -0.49, 0.49  # top and bottom, almost half a pixel
    assert bool(flows.inside_frame(flow).all())
    assert bool(flows.consistency_mask(flow, -flow).all())
    flow[:, 0, 2, 0] = -0.6
    flow[:, 1, -1, 4] = 0.51
    outside = ~flows.inside_frame(flow)[0, 0]
    assert outside.nonzero().tolist() == [[2, 0], [height - 1, 4]]


def test_warping_the_next_frame_reconstructs_the_current_one(moved_clip):
    reader, field, _ = moved_clip
    frames = torch.from_numpy(np.stack(list(reader.frames()))).permute(0, 3, 1, 2).float()
    rebuilt = flows.warp_bilinear(frames[1:], field.forward)
    valid = field.valid_forward.expand_as(rebuilt)
    mse = ((rebuilt - frames[:-1])[valid] ** 2).mean()
    assert 10 * torch.log10(255**2 / mse) >= 30


def test_warp_with_integer_shift_is_exact():
    image = torch.randn(1, 3, 20, 30)
    flow = torch.zeros(1, 2, 20, 30)
    flow[:, 0], flow[:, 1] = 3, -2
    warped = flows.warp_bilinear(image, flow)
    torch.testing.assert_close(warped[..., 2:, :-3], image[..., :-2, 3:])


def test_chained_translations_add_up():
    first = torch.zeros(1, 2, 32, 32)
    first[:, 0] = 1.5
    second = torch.zeros(1, 2, 32, 32)
    second[:, 1] = -0.75
    chained = flows.chain(first, second)
    torch.testing.assert_close(chained[:, 0], torch.full((1, 32, 32), 1.5))
    torch.testing.assert_close(chained[:, 1], torch.full((1, 32, 32), -0.75))


def test_chain_valid_carries_occlusion_along():
    flow_0a = torch.zeros(1, 2, 16, 16)
    flow_0a[:, 0] = 2.0
    valid_0a = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    valid_ab = torch.ones(1, 1, 16, 16, dtype=torch.bool)
    valid_ab[..., 5, 7] = False  # frame a's pixel (7, 5) is occluded in b
    chained = flows.chain_valid(flow_0a, valid_0a, valid_ab)
    assert not chained[0, 0, 5, 5] and chained[0, 0, 5, 4] and chained[0, 0, 6, 5]


def test_resize_to_grid_averages_and_rescales():
    flow = torch.zeros(1, 2, 16, 24)
    flow[:, 0, :, :8] = 8.0
    flow[:, 1] = -4.0
    valid = torch.ones(1, 1, 16, 24, dtype=torch.bool)
    valid[..., :8, 8:16] = False
    coarse, coarse_valid = flows.resize_to_grid(flow, valid, 8)
    assert coarse.shape == (1, 2, 2, 3)
    torch.testing.assert_close(coarse[0, 0], torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
    torch.testing.assert_close(coarse[0, 1], torch.full((2, 3), -0.5))
    assert coarse_valid[0, 0].tolist() == [[True, False, True], [True, True, True]]


def test_completion_fills_a_hole_from_its_surroundings():
    ys, xs = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
    smooth = torch.stack([0.05 * xs, -0.03 * ys + 1])[None]
    broken = smooth.clone()
    hole = torch.zeros(1, 1, 48, 64, dtype=torch.bool)
    hole[..., 15:30, 20:40] = True
    broken[hole.expand_as(broken)] = 25.0
    filled = flows.complete_in_mask(broken, hole)
    assert float((filled - smooth).abs()[hole.expand_as(filled)].max()) < 0.5
    torch.testing.assert_close(filled[~hole.expand_as(filled)], smooth[~hole.expand_as(smooth)])


def test_second_call_is_served_from_the_cache(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=24, size=(160, 96), audio=False)
    reader = open_video(clip)
    estimator = flows.make_estimator("dis")
    cache = flows.TensorCache(tmp_path / "cache")
    start = time.perf_counter()
    first, hit = flows.estimate_video_flows(reader, estimator, cache=cache)
    cold = time.perf_counter() - start
    assert not hit
    start = time.perf_counter()
    second, hit = flows.estimate_video_flows(reader, estimator, cache=cache)
    warm = time.perf_counter() - start
    assert hit
    assert cold / warm >= 20, f"cold {cold:.3f}s, warm {warm:.3f}s"
    for name in ("forward", "backward", "valid_forward", "valid_backward"):
        torch.testing.assert_close(getattr(first, name)[:], getattr(second, name)[:])


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_cache_entry_is_recomputed(tmp_path, damage):
    reader = open_video(make_clip(tmp_path / "in.mp4", frames=6, audio=False))
    estimator = flows.make_estimator("dis", dis_preset="fast")
    cache = flows.TensorCache(tmp_path / "cache")
    reference, _ = flows.estimate_video_flows(reader, estimator, cache=cache)
    reference = reference.in_memory()  # read before the entry it is read from is damaged
    (entry,) = (tmp_path / "cache" / "flow").iterdir()
    raw = bytearray(entry.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[-100] ^= 0xFF  # inside the tensor data: only the checksum notices
    entry.write_bytes(bytes(raw))
    again, hit = flows.estimate_video_flows(reader, estimator, cache=cache)
    assert not hit and cache.discarded == [entry]
    torch.testing.assert_close(again.forward[:], reference.forward[:])
    assert flows.TensorCache(tmp_path / "cache").open(entry.stem) is not None


def test_raft_loads_a_local_weights_file_and_runs(tmp_path):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    weights = tmp_path / "raft_small_random.pth"
    torch.save(raft_small(weights=None).state_dict(), weights)
    estimator = flows.make_estimator("raft", raft_model="small", raft_weights=weights)
    frames = np.stack(
        [np.random.default_rng(i).integers(0, 255, (60, 68, 3), np.uint8) for i in range(2)]
    )
    flow = estimator(frames[:1], frames[1:])
    assert flow.shape == (1, 2, 60, 68) and torch.isfinite(flow).all()


def test_raft_rejects_a_file_of_the_wrong_model(tmp_path):
    bogus = tmp_path / "bogus.pth"
    torch.save({"weight": torch.zeros(3)}, bogus)
    with pytest.raises(WdiffError, match="bogus.pth"):
        flows.make_estimator("raft", raft_model="small", raft_weights=bogus)


def test_upscale_takes_raft_small_and_a_large_file_is_named_as_such(tmp_path, sr_model, capfd):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    weights = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), weights)
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    args = ["--device", "cpu", "upscale", str(clip), "--scale", "2", "--steps", "1", "--quiet"]
    args += ["--model", str(sr_model), "--flow", "raft", "--raft-weights", str(weights)]
    args += ["--no-cache"]
    # the default --raft-model large: the small file is named for what it is
    assert main([*args, "-o", str(tmp_path / "a.mp4")]) == 2
    assert "add --raft-model small" in capfd.readouterr().err
    assert main([*args, "--raft-model", "small", "-o", str(tmp_path / "b.mp4")]) == 0
    report = json.loads((tmp_path / "b.report.json").read_text())
    assert report["settings"]["raft_model"] == "small"


def test_raft_without_weights_says_which_file_and_where(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    code = main(["flow", str(clip), "--flow", "raft", "-o", str(tmp_path / "f.safetensors")])
    err = capfd.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "raft_large_C_T_SKHT_V2-ff5fadd5.pth" in err and "--raft-weights" in err
    assert not (tmp_path / "f.safetensors").exists()


def test_flow_command_writes_the_documented_file(tmp_path, capfd):
    from safetensors import safe_open

    clip = make_clip(tmp_path / "in.mp4", frames=5, size=(64, 48), audio=False)
    out = tmp_path / "flows.safetensors"
    viz = tmp_path / "viz.mp4"
    args = ["--quiet", "flow", str(clip), "-o", str(out), "--viz", str(viz)]
    code = main(args + ["--cache-dir", str(tmp_path / "c")])
    assert code == 0, capfd.readouterr().err
    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
        shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        dtypes = {name: handle.get_slice(name).get_dtype() for name in handle.keys()}
    assert shapes == {
        "forward": (4, 2, 48, 64),
        "backward": (4, 2, 48, 64),
        "valid_forward": (4, 1, 48, 64),
        "valid_backward": (4, 1, 48, 64),
    }
    assert dtypes["forward"] == "F32" and dtypes["valid_forward"] == "BOOL"
    assert meta["method"] == "dis" and meta["width"] == "64" and meta["height"] == "48"
    viz_info = open_video(viz).info
    assert viz_info.frame_count == 4 and viz_info.size == (128, 48)
    assert main(args + ["--no-cache"]) == 2  # exists: needs --overwrite
    assert main(args + ["--no-cache", "--overwrite"]) == 0


def test_flow_inside_a_mask_is_completed(tmp_path):
    folder, truth = moved_photo_clip(tmp_path / "frames", "translation", frames=3)
    for file in sorted(folder.iterdir()):  # black out a box: no texture to track inside it
        image = np.array(Image.open(file))
        image[60:110, 70:130] = 0
        Image.fromarray(image).save(file)
    mask = np.zeros((CROP, CROP), np.uint8)
    mask[55:115, 65:135] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "completed.safetensors"
    code = main(["-q", "flow", str(folder), "--mask", str(tmp_path / "mask.png"), "-o", str(out)])
    assert code == 0
    field = flows.FlowField.load(out)
    inside = torch.from_numpy(mask > 0)
    error = (field.forward[:] - truth).norm(dim=1)[:, inside]
    assert float(error.mean()) < 0.5
