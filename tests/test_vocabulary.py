"""One vocabulary across commands (#21): --flow, --noise, --sampler and --train-steps wherever
they apply; the old spellings (--method, finetune's --steps, a preset's ``method``) refused in
one line naming the new one; flags without a ``<bool>`` type in --help and with a --no- form
where a preset may turn them on; every usage error starting ``wdiff: error:``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml
from media import make_clip
from PIL import Image
from safetensors import safe_open

from wdiff import __version__
from wdiff.cli import app, main
from wdiff.flow.cache import content_digest
from wdiff.restore.job import plan_restore
from wdiff.resume import RunState

COMMANDS = sorted(command.name or command.callback.__name__ for command in app.registered_commands)
TINY_TRAINING = ["--arch", "builtin-tiny", "--batch-size", "1", "--crop", "16"]


def one_error_line(capfd) -> str:
    """The single line a refused command printed on stderr (nothing on stdout)."""
    captured = capfd.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and captured.out == "", captured
    assert lines[0].startswith("wdiff: error: ") and "Traceback" not in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "old, line",
    [
        (
            ["flow", "{clip}", "--method", "raft"],
            "wdiff: error: --method is now --flow in 'wdiff flow' (dis, farneback or raft)",
        ),
        (
            ["warp-noise", "{clip}", "--method", "integral"],
            "wdiff: error: --method is now --noise in 'wdiff warp-noise' "
            "(gp, integral, bilinear, bilinear-gp, nearest, fixed or resample)",
        ),
        (
            ["upscale", "{clip}", "--scale", "2", "--method", "batch-consistent"],
            "wdiff: error: --method is now --sampler in 'wdiff upscale' "
            "(warped or batch-consistent)",
        ),
        (
            ["--quiet", "inpaint", "{clip}", "--method", "warped", "--mask", "{clip}"],
            "wdiff: error: --method is now --sampler in 'wdiff inpaint' "
            "(warped or batch-consistent)",
        ),
        (
            ["finetune", "--out", "{tmp}/run", "--steps", "3", *TINY_TRAINING],
            "wdiff: error: --steps is now --train-steps in 'wdiff finetune' "
            "(optimiser steps; --steps is the sampling steps of upscale and inpaint)",
        ),
    ],
)
def test_an_old_spelling_is_one_line_naming_the_new_one(tmp_path, capfd, old, line):
    clip = make_clip(tmp_path / "in.mp4", frames=3, size=(16, 12), audio=False)
    args = [arg.format(clip=clip, tmp=tmp_path) for arg in old]
    assert main(args) == 2
    assert one_error_line(capfd) == line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.mp4"]  # nothing written


@pytest.mark.parametrize(
    "args, new",
    [
        (["flow", "in.mp4", "--method"], "--flow in 'wdiff flow'"),
        (["--seed", "1", "warp-noise", "in.mp4", "--method"], "--noise in 'wdiff warp-noise'"),
        (["upscale", "in.mp4", "--method"], "--sampler in 'wdiff upscale'"),
        (["inpaint", "in.mp4", "--method"], "--sampler in 'wdiff inpaint'"),
        (["finetune", "--out", "run", "--steps"], "--train-steps in 'wdiff finetune'"),
    ],
)
def test_an_old_spelling_without_its_value_is_refused_alike(args, new, capfd):
    assert main(args) == 2
    assert f" is now {new} (" in one_error_line(capfd)


@pytest.mark.parametrize(
    "command, old", [("flow", "--method"), ("warp-noise", "--method"), ("finetune", "--steps")]
)
def test_old_spellings_are_hidden_and_never_suggested(command, old, capfd, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main([command, "--help"]) == 0
    assert not re.search(rf"(?<![\w-]){old}\b", capfd.readouterr().out)
    assert main([command, old[:-1] + "x"]) == 2  # --methox, --stepx
    assert old not in one_error_line(capfd)


def test_flow_and_warp_noise_take_flow_and_noise(tmp_path, capfd):
    clip = make_clip(tmp_path / "in.mp4", frames=3, size=(32, 24), audio=False)
    flows, noise = tmp_path / "f.safetensors", tmp_path / "n.safetensors"
    assert (
        main(["-q", "flow", str(clip), "--flow", "farneback", "--no-cache", "-o", str(flows)]) == 0
    )
    args = ["-q", "warp-noise", str(clip), "--noise", "fixed", "--flow", "farneback"]
    assert main([*args, "--no-cache", "-o", str(noise)]) == 0
    assert capfd.readouterr().out.split() == [str(flows), str(noise)]
    with safe_open(str(flows), framework="pt") as handle:
        assert handle.metadata()["method"] == "farneback"
    with safe_open(str(noise), framework="pt") as handle:
        assert handle.metadata()["method"] == "fixed"
        assert handle.metadata()["flow"] == "farneback"


def test_upscale_takes_sampler(tmp_path, sr_model, capfd):
    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(16, 12), audio=False)
    args = ["upscale", str(clip), "--scale", "2", "--steps", "1", "--model", str(sr_model)]
    assert main([*args, "--sampler", "batch-consistent", "--no-cache", "--quiet"]) == 0
    output = tmp_path / "low.x2-batch-consistent-gp.mp4"  # the default name says the sampler
    assert capfd.readouterr().out.split() == [str(output)]
    report = json.loads((tmp_path / "low.x2-batch-consistent-gp.report.json").read_text())
    assert report["settings"]["sampler"] == "batch-consistent"
    assert "method" not in report["settings"]


def test_inpaint_takes_sampler(tmp_path, inpaint_model, capfd):
    clip = make_clip(tmp_path / "in.mp4", frames=3, size=(16, 16), audio=False)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:10, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    args = ["inpaint", str(clip), "--mask", str(tmp_path / "mask.png"), "--steps", "1"]
    args += ["--model", str(inpaint_model), "--sampler", "batch-consistent", "--quiet"]
    assert main([*args, "--no-cache"]) == 0
    assert capfd.readouterr().out.split() == [
        str(tmp_path / "in.inpainted-batch-consistent-gp.mp4")
    ]


def test_finetune_takes_train_steps(tmp_path, capfd):
    out = tmp_path / "run"
    args = ["finetune", "--out", str(out), *TINY_TRAINING, "--train-steps", "2", "--quiet"]
    assert main([*args, "--checkpoint-every", "1"]) == 0
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 2


def test_sampler_is_the_settings_word_and_method_keys_are_refused(tmp_path, capfd):
    clip = make_clip(tmp_path / "in.mp4", frames=2, size=(16, 12), audio=False)
    assert main(["upscale", str(clip), "--sampler", "batch-consistent", "--print-config"]) == 0
    printed = yaml.safe_load(capfd.readouterr().out)
    assert printed["sampler"] == "batch-consistent" and "method" not in printed
    old = tmp_path / "old.yaml"
    old.write_text("steps: 10\nmethod: batch-consistent\n")
    assert main(["upscale", str(clip), "--preset", str(old), "--print-config"]) == 2
    assert one_error_line(capfd) == (
        f"wdiff: error: {old}: setting 'method' is now 'sampler' (warped or batch-consistent); "
        "rename it in the file"
    )
    old.write_text("steps: 10\nsampler: batch-consistent\n")
    assert main(["upscale", str(clip), "--preset", str(old), "--print-config"]) == 0
    assert yaml.safe_load(capfd.readouterr().out)["sampler"] == "batch-consistent"


def test_a_no_flag_turns_off_what_a_preset_turns_on(tmp_path, capfd):
    clip = make_clip(tmp_path / "in.mp4", frames=2, size=(16, 12), audio=False)
    preset = tmp_path / "memory.yaml"
    preset.write_text("vae_tiling: true\nvae_slicing: true\ncpu_offload: true\n")
    args = ["upscale", str(clip), "--preset", str(preset), "--print-config"]
    assert main(args) == 0
    printed = yaml.safe_load(capfd.readouterr().out)
    assert printed["vae_tiling"] and printed["vae_slicing"] and printed["cpu_offload"]
    assert main([*args, "--no-vae-tiling", "--no-vae-slicing", "--no-cpu-offload"]) == 0
    printed = yaml.safe_load(capfd.readouterr().out)
    assert not (printed["vae_tiling"] or printed["vae_slicing"] or printed["cpu_offload"])
    plain = ["upscale", str(clip), "--vae-tiling", "--print-config"]  # the old spelling still
    assert main(plain) == 0 and yaml.safe_load(capfd.readouterr().out)["vae_tiling"] is True


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_no_bool_type(command, capfd, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main([command, "--help"] if command else ["--help"]) == 0
    text = capfd.readouterr().out
    assert "--help" in text and "--debug" in text
    assert "<bool>" not in text and "true|false" not in text.lower()


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_every_usage_error_starts_wdiff_error(command, capfd):
    assert main([command, "--bogus"] if command else ["--bogus"]) == 2
    assert "No such option: --bogus" in one_error_line(capfd)


def test_resume_of_a_state_from_before_the_rename_is_refused_in_one_line(tmp_path, sr_model, capfd):
    """A run interrupted under the old setting name (its fingerprint has ``method``): --resume
    says the run differs in settings (and how to start over), it does not crash."""
    clip = make_clip(tmp_path / "low.mp4", frames=3, size=(16, 12), audio=False)
    out = tmp_path / "up.mp4"
    given = {"scale": 2, "steps": 1, "model": str(sr_model)}
    job = plan_restore("sr", clip, out, given=given)
    settings = job.settings.to_dict()
    settings["method"] = settings.pop("sampler")
    inputs = [content_digest(path) if path.is_file() else str(path) for path in job.inputs]
    fingerprint = {"settings": settings, "inputs": inputs, "version": __version__}
    RunState(out, fingerprint).save(0, np.zeros((24, 32, 3), np.uint8), {}, [{}])
    args = ["upscale", str(clip), "--scale", "2", "--steps", "1", "--model", str(sr_model)]
    assert main([*args, "-o", str(out), "--resume", "--no-cache"]) == 2
    assert one_error_line(capfd) == (
        f"wdiff: error: {out}: the interrupted run differs in settings; resume with its "
        "settings, or start over with --overwrite (without --resume)"
    )
    assert main([*args, "-o", str(out), "--overwrite", "--no-cache", "--quiet"]) == 0
    assert capfd.readouterr().out.split() == [str(out)]
