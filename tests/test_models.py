"""Built-in models and wdiff finetune: training lowers the loss, checkpoints resume, the
denoiser takes any frame size, missing weights give one clear line."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import pytest
import torch
from processes import start_wdiff

from wdiff.cli import main
from wdiff.datasets import TRAIN_PHOTOS, _photos, random_crops, random_masks
from wdiff.errors import WdiffError
from wdiff.models import builtin
from wdiff.models.builtin import ARCHITECTURES, BuiltinConfig, BuiltinDenoiser, BuiltinNet
from wdiff.models.deepen import deepen
from wdiff.noise.exact import gp_noise, kernel
from wdiff.tasks import Inpainting, SuperResolution
from wdiff.training import edm_loss, training_example


@pytest.fixture(scope="module")
def photos():
    return _photos(TRAIN_PHOTOS)


@pytest.mark.slow  # over 5 s: 15-26 s on 2 cores at load 7
@pytest.mark.parametrize("task", ["sr", "inpaint"])
def test_training_steps_lower_the_loss(task, photos):
    """30 AdamW steps on one fixed batch (fixed sigmas and GP noise) cut the EDM loss by 30%."""
    torch.manual_seed(0)
    net = BuiltinNet(BuiltinConfig(task=task, **ARCHITECTURES["builtin-tiny"]))
    gen = torch.Generator().manual_seed(1)
    crops = random_crops(photos, 32, 8, gen)
    cond = training_example(task, crops, gen)
    noise = gp_noise(crops.shape, gen)
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss = edm_loss(net, crops, cond, noise, torch.Generator().manual_seed(2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize(("augment", "symmetries"), [("flip", 2), ("dihedral", 8)])
def test_training_crops_take_the_symmetries_their_augment_names(augment, symmetries):
    """A crop the size of its image is the image in one of the square's eight symmetries:
    64 crops show both orientations of a flip, and all eight with dihedral."""
    image = np.random.default_rng(5).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    whole = torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1
    forms = [
        torch.rot90(form, turns, (-2, -1)) for form in (whole, whole.flip(-1)) for turns in range(4)
    ]
    crops = random_crops([image], 8, 64, torch.Generator().manual_seed(6), augment)
    seen = set()
    for crop in crops:
        matches = [k for k, form in enumerate(forms) if torch.equal(crop, form)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == symmetries


def test_gp_training_noise_has_the_kernel_covariance():
    """Exact GP samples: lags 0-2 within 0.02 of the kernel (64 x 3 x 64 x 64 values)."""
    noise = gp_noise((64, 3, 64, 64), torch.Generator().manual_seed(3)).double()
    for dx, dy in [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0)]:
        a, b = noise[..., dy:, dx:], noise[..., : 64 - dy, : 64 - dx]
        expected = float(kernel(torch.tensor([float(dx), float(dy)])))
        assert abs(float((a * b).mean()) - expected) < 0.02


def test_masks_cover_part_of_the_frame():
    masks = random_masks(64, 64, torch.Generator().manual_seed(4))
    share = masks.float().mean((1, 2, 3))
    assert 0.02 < float(share.mean()) < 0.5 and bool((share > 0).all())


@pytest.mark.slow  # over 5 s: 15-26 s on 2 cores at load 7
def test_finetune_command_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = [
        "finetune",
        "--out",
        str(out),
        "--arch",
        "builtin-tiny",
        "--train-steps",
        "4",
        "--batch-size",
        "2",
        "--crop",
        "32",
        "--checkpoint-every",
        "2",
        "--quiet",
    ]
    assert main(args) == 0
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 4
    assert main(args) == 2  # a trained model is not overwritten by a fresh run
    longer = [*args, "--resume"]
    longer[longer.index("--train-steps") + 1] = "6"
    assert main(longer) == 0
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 6
    assert (out / "loss.png").is_file()
    net, metadata = BuiltinNet.load(out / "model.safetensors")
    assert json.loads(metadata["settings"])["steps"] == 6

    denoiser = BuiltinDenoiser(net)
    low = torch.rand(1, 3, 9, 13) * 2 - 1  # odd size: padded inside, cropped back
    cond = denoiser.condition(SuperResolution(2), low)
    x = torch.randn(1, 3, 18, 26)
    assert denoiser(x, torch.tensor(1.0), cond).shape == x.shape


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_takes_any_frame_size_and_loads_back(arch, tmp_path):
    """Random weights: a 21 x 35 frame (no multiple of any level count) comes back its own
    size, and the saved file loads into the same architecture with the same output."""
    torch.manual_seed(0)
    net = BuiltinNet(BuiltinConfig(task="inpaint", **ARCHITECTURES[arch])).eval()
    denoiser = BuiltinDenoiser(net)
    frame = torch.rand(1, 3, 21, 35) * 2 - 1
    hole = torch.zeros(1, 1, 21, 35, dtype=torch.bool)
    hole[..., 5:15, 10:30] = True
    cond = denoiser.condition(Inpainting(), frame, hole)
    x = torch.randn(1, 3, 21, 35)
    with torch.no_grad():
        out = denoiser(x, torch.tensor(2.0), cond)
    assert out.shape == x.shape
    net.save(tmp_path / "model.safetensors")
    loaded, _ = BuiltinNet.load(tmp_path / "model.safetensors")
    assert loaded.config.block_out_channels == net.config.block_out_channels
    with torch.no_grad():
        again = BuiltinDenoiser(loaded.eval())(x, torch.tensor(2.0), cond)
    assert torch.equal(out, again)


def test_wrong_task_and_missing_weights_are_clear(tmp_path, monkeypatch, capsys):
    from wdiff.errors import WdiffError

    net = BuiltinNet(BuiltinConfig(task="sr", **ARCHITECTURES["builtin-tiny"]))
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    with pytest.raises(WdiffError, match="builtin:inpaint"):
        BuiltinDenoiser(net).condition(Inpainting(), torch.zeros(1, 3, 8, 8), mask)
    monkeypatch.setattr(builtin, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(WdiffError, match="make train-builtin"):
        builtin.load_builtin("sr")
    assert main(["finetune", "--out", str(tmp_path / "x"), "--task", "colour"]) == 2
    assert "--task colour" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_in_finetune_points_to_the_kept_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = ["finetune", "--out", str(out), "--arch", "builtin-tiny", "--train-steps", "500"]
    args += ["--batch-size", "2", "--crop", "32", "--checkpoint-every", "40", "--quiet"]
    process = start_wdiff(args, stderr=subprocess.PIPE, text=True)
    state, log = out / "checkpoint" / "state.json", out / "log.jsonl"
    deadline = time.time() + 240
    while not log.is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)  # after step 50 was logged, most likely before step 80
    lines = process.communicate(timeout=120)[1].strip().splitlines()
    assert process.returncode == 130 and not (out / "model.safetensors").exists()
    step = json.loads(state.read_text())["step"]
    assert len(lines) == 1 and f"checkpoint at step {step} is kept" in lines[0], lines
    assert "--resume" in lines[0]
    assert main(args) == 2  # a fresh run would throw the checkpoint away
    assert main([*args, "--resume"]) == 0
    logged = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert logged == sorted(set(logged)) and logged[-1] == 500  # no step logged twice


def test_init_starts_from_the_given_model(tmp_path):
    """--init: the run starts from that model's weights and architecture (one step at a tiny
    learning rate leaves them within 1e-5), where a run without it starts from random ones;
    a model of the other task is refused in one line."""
    first = tmp_path / "first"
    tiny = ["--train-steps", "1", "--batch-size", "1", "--crop", "16"]
    assert main(["finetune", "--out", str(first), "--arch", "builtin-tiny", *tiny]) == 0
    start, _ = BuiltinNet.load(first / "model.safetensors")
    again = tmp_path / "again"
    args = ["finetune", "--out", str(again), *tiny, "--lr", "1e-9", "--seed", "5"]
    assert main([*args, "--init", str(first)]) == 0
    after, _ = BuiltinNet.load(again / "model.safetensors")
    assert after.config.block_out_channels == start.config.block_out_channels
    gaps = [
        (a - b).abs().max().item()
        for a, b in zip(after.parameters(), start.parameters(), strict=True)
    ]
    assert max(gaps) < 1e-5
    fresh = tmp_path / "fresh"
    assert main([*args[:2], str(fresh), *args[3:], "--arch", "builtin-tiny"]) == 0
    random_start, _ = BuiltinNet.load(fresh / "model.safetensors")
    pairs = zip(random_start.parameters(), start.parameters(), strict=True)
    assert max((a - b).abs().max().item() for a, b in pairs) > 1e-2
    wrong = main(
        ["finetune", "--out", str(tmp_path / "x"), "--task", "inpaint", *tiny, "--init", str(first)]
    )
    assert wrong == 2 and not (tmp_path / "x").exists()


def test_a_share_of_training_items_sits_at_sigma_max():
    """p_top: that share of the items (within 0.03 over 4,000) is trained at sigma_max, the
    rest log-normal; p_top = 0 draws exactly as before (same generator use)."""
    seen = []

    def net(x, sigma, cond):
        seen.append(sigma)
        return x

    clean = torch.zeros(4000, 1, 1, 1)
    edm_loss(
        net,
        clean,
        None,
        torch.zeros_like(clean),
        torch.Generator().manual_seed(0),
        0.1,
        -2.8,
        1.2,
        0.25,
        20.0,
    )
    top = (seen[0] - 20.0).abs() < 1e-3
    assert abs(top.float().mean().item() - 0.25) < 0.03
    assert float(seen[0][~top].log().mean()) == pytest.approx(-2.8, abs=0.06)
    edm_loss(net, clean, None, torch.zeros_like(clean), torch.Generator().manual_seed(0))
    expected = (-1.2 + 1.2 * torch.randn(4000, generator=torch.Generator().manual_seed(0))).exp()
    assert torch.allclose(seen[1], expected)


def test_top_share_is_recorded_and_checked(tmp_path):
    """--top-share trains that share at sigma_max and the model's config records it; out of
    [0, 1] it is refused before anything is written."""
    out = tmp_path / "run"
    tiny = ["--arch", "builtin-tiny", "--train-steps", "1", "--batch-size", "2", "--crop", "16"]
    assert main(["finetune", "--out", str(out), *tiny, "--top-share", "0.5"]) == 0
    net, _ = BuiltinNet.load(out / "model.safetensors")
    assert net.config.p_top == 0.5
    bad = tmp_path / "bad"
    assert main(["finetune", "--out", str(bad), *tiny, "--top-share", "1.5"]) == 2
    assert not bad.exists()


def test_a_first_level_network_denoises_sigma_max_alone(tmp_path):
    """A net with a first-level network: items at sigma_max get that network's output, items
    at any lower level the net's own, each item of a mixed batch its own; the pair saves and
    loads back whole, and a file without one loads without one."""
    tiny = ARCHITECTURES["builtin-tiny"]
    config = BuiltinConfig(task="sr", residual=True, sigma_data=0.1, sigma_max=20.0, **tiny)
    torch.manual_seed(0)
    own, first = BuiltinNet(config).eval(), BuiltinNet(config).eval()
    net = BuiltinNet(config, config).eval()
    net.load_state_dict(own.state_dict() | {f"first.{k}": v for k, v in first.state_dict().items()})
    x, cond = torch.randn(2, 3, 16, 16), torch.rand(2, 3, 16, 16) * 2 - 1
    top, low = torch.tensor([20.0, 20.0]), torch.tensor([0.5, 0.5])
    mixed = torch.tensor([20.0, 0.5])
    with torch.no_grad():
        assert torch.equal(net(x, top, cond), first(x, top, cond))
        assert torch.equal(net(x, low, cond), own(x, low, cond))
        assert not torch.allclose(first(x, top, cond), own(x, top, cond), atol=1e-3)
        out = net(x, mixed, cond)
        assert torch.equal(out[:1], first(x, top, cond)[:1])
        assert torch.equal(out[1:], own(x, low, cond)[1:])
    net.save(tmp_path / "pair.safetensors")
    loaded, metadata = BuiltinNet.load(tmp_path / "pair.safetensors")
    assert "first_config" in metadata and loaded.first is not None
    with torch.no_grad():
        assert torch.equal(loaded(x, mixed, cond), out)
    own.save(tmp_path / "one.safetensors")
    assert BuiltinNet.load(tmp_path / "one.safetensors")[0].first is None


def test_deepening_keeps_what_the_network_computes_and_trains_its_new_layers():
    """deepen(net, L): the same outputs (to 1e-6, at every noise level, for two and three
    layers per block) from more parameters; the new layers' output convolutions, which start
    at zero, get gradients; fewer layers than the net has are refused."""
    tiny = ARCHITECTURES["builtin-tiny"]
    config = BuiltinConfig(task="sr", residual=True, sigma_data=0.1, sigma_max=20.0, **tiny)
    torch.manual_seed(0)
    net = BuiltinNet(config).eval()
    for parameter in net.parameters():  # diffusers starts some layers at zero; make all count
        parameter.data += 0.05 * torch.randn_like(parameter)
    x, cond = torch.randn(3, 3, 16, 16), torch.rand(3, 3, 16, 16) * 2 - 1
    sigma = torch.tensor([20.0, 0.5, 0.01])
    with torch.no_grad():
        before = net(x, sigma, cond)
    size = sum(parameter.numel() for parameter in net.parameters())
    for layers in (2, 3):
        deeper = deepen(net, layers).eval()
        assert deeper.config.layers_per_block == layers
        assert sum(parameter.numel() for parameter in deeper.parameters()) > size
        with torch.no_grad():
            assert (deeper(x, sigma, cond) - before).abs().max() < 1e-6
    deeper(x, sigma, cond).square().mean().backward()
    new_outputs = [block.resnets[-1].conv2.weight for block in deeper.unet.down_blocks]
    new_outputs += [block.resnets[1].conv2.weight for block in deeper.unet.up_blocks]
    assert all(weight.grad is not None and weight.grad.abs().max() > 0 for weight in new_outputs)
    with pytest.raises(WdiffError, match="cannot deepen"):
        deepen(deeper, 2)


def test_a_first_level_run_trains_only_the_first_network(tmp_path):
    """--first-level: the written model keeps --init's network bit for bit and holds a
    first-level network that started from the given model and moved (or from random weights of
    a named architecture); without --init, or with --top-share, it is refused in one line
    before anything is written."""
    tiny = ["--train-steps", "2", "--batch-size", "2", "--crop", "16"]
    base = tmp_path / "base"
    assert main(["finetune", "--out", str(base), "--arch", "builtin-tiny", *tiny]) == 0
    start, _ = BuiltinNet.load(base / "model.safetensors")
    run = tmp_path / "first"
    args = ["finetune", "--out", str(run), *tiny, "--lr", "1e-2", "--init", str(base)]
    assert main([*args, "--first-level", str(base)]) == 0
    after, _ = BuiltinNet.load(run / "model.safetensors")
    own = {k: v for k, v in after.state_dict().items() if not k.startswith("first.")}
    assert all(torch.equal(own[k], v) for k, v in start.state_dict().items())
    assert after.first is not None and after.first.config.p_top == 1.0
    moved = [
        (a - b).abs().max().item()
        for a, b in zip(after.first.parameters(), start.parameters(), strict=True)
    ]
    assert max(moved) > 1e-4
    deeper = tmp_path / "deeper"
    assert (
        main([*args[:2], str(deeper), *args[3:], "--first-level", str(base), "--first-layers", "2"])
        == 0
    )
    after, _ = BuiltinNet.load(deeper / "model.safetensors")
    assert after.first.config.layers_per_block == 2 and after.config.layers_per_block == 1
    own = {k: v for k, v in after.state_dict().items() if not k.startswith("first.")}
    assert all(torch.equal(own[k], v) for k, v in start.state_dict().items())
    fresh = tmp_path / "fresh"
    assert main([*args[:2], str(fresh), *args[3:], "--first-level", "builtin-small"]) == 0
    after, _ = BuiltinNet.load(fresh / "model.safetensors")
    assert after.first.config.block_out_channels == ARCHITECTURES["builtin-small"].get(
        "block_out_channels", BuiltinConfig().block_out_channels
    )
    assert after.config.block_out_channels == start.config.block_out_channels
    for extra in (["--top-share", "0.5"], [], ["--first-layers", "0"]):
        bad = tmp_path / "bad"
        command = ["finetune", "--out", str(bad), *tiny, "--first-level", str(base), *extra]
        command += ["--init", str(base)] if extra else []
        assert main(command) == 2 and not bad.exists()
