"""The bad-input corpus: every case exits 2 with one line naming the file, and writes nothing."""

import json
import struct
import subprocess
import sys
import zlib

import av
import numpy as np
import pytest
import torch
from bad_input_train_cases import CASES as TRAIN_CASES
from media import make_clip, make_frame_folder
from PIL import Image

from wdiff.cli import main

MOUNTS = []  # tmpfs mounts a case made, unmounted after the test


def mount_tmpfs(folder, size="64k", files=None, read_only=False):
    """A tiny tmpfs at ``folder`` holding ``files`` ({name: bytes}), remounted read-only if
    asked; skips the test where this machine cannot mount (not root, no CAP_SYS_ADMIN)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip("cannot mount a tmpfs here")
    MOUNTS.append(folder)
    for name, data in (files or {}).items():
        (folder / name).write_bytes(data)
    if read_only:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    return folder


def clip(tmp, name="in.mp4", frames=4):
    return make_clip(tmp / name, frames=frames, audio=False)


def tiny_model(path, task="sr", edit=None):
    """A tiny built-in model file; ``edit(state, metadata)`` damages it."""
    from safetensors.torch import save_file

    from wdiff.models.builtin import ARCHITECTURES, BuiltinConfig, BuiltinNet

    torch.manual_seed(0)
    net = BuiltinNet(BuiltinConfig(task=task, **ARCHITECTURES["builtin-tiny"]))
    net.save(path)
    if edit is not None:
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata()
        state = load_file(str(path))
        edit(state, metadata)
        save_file(state, str(path), metadata=metadata)
    return path


def upscale(tmp, *extra, name="in.mp4"):
    return ["upscale", str(clip(tmp, name)), "--scale", "2", "--steps", "1", *extra]


def missing(tmp):
    return ["flow", str(tmp / "nowhere.mp4")], "nowhere.mp4"


def empty(tmp):
    (tmp / "empty.mp4").write_bytes(b"")
    return ["flow", str(tmp / "empty.mp4")], "empty.mp4"


def text_named_mp4(tmp):
    (tmp / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
    return ["flow", str(tmp / "notes.mp4")], "notes.mp4"


def truncated(tmp):
    data = make_clip(tmp / "whole.mp4", frames=24).read_bytes()
    (tmp / "cut.mp4").write_bytes(data[: len(data) // 3])
    (tmp / "whole.mp4").unlink()
    return ["flow", str(tmp / "cut.mp4")], "cut.mp4"


def audio_only(tmp):
    make_clip(tmp / "song.m4a", video=False)
    return ["flow", str(tmp / "song.m4a")], "song.m4a"


def zero_frames(tmp):
    container = av.open(str(tmp / "none.mkv"), "w")
    stream = container.add_stream("libx264", rate=24)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    container.start_encoding()
    container.close()
    return ["flow", str(tmp / "none.mkv")], "none.mkv"


def single_frame(tmp):
    make_clip(tmp / "still.mp4", frames=1, audio=False)
    return ["flow", str(tmp / "still.mp4")], "still.mp4"


def frames_of_odd_sizes(tmp):
    folder = make_frame_folder(tmp / "frames", frames=4)
    Image.fromarray(np.zeros((47, 65, 3), np.uint8)).save(folder / "frame_3.png")
    return ["flow", str(folder)], "frame_3.png"


def sixteen_bit_frames(tmp):
    folder = tmp / "deep"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(np.full((48, 64), 1000 * index, np.uint16)).save(folder / f"{index}.png")
    return ["flow", str(folder)], "0.png"


def grayscale_frames(tmp):
    folder = tmp / "gray"
    folder.mkdir()
    for index in range(3):
        Image.fromarray(np.full((48, 64), 40 * index, np.uint8)).save(folder / f"{index}.png")
    return ["flow", str(folder)], "0.png"


def alpha_frames(tmp):
    folder = tmp / "alpha"
    folder.mkdir()
    for index in range(3):
        rgba = np.full((48, 64, 4), 40 * index, np.uint8)
        Image.fromarray(rgba, mode="RGBA").save(folder / f"{index}.png")
    return ["flow", str(folder)], "0.png"


def mask_of_wrong_size(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp / "small_mask.png")
    return ["flow", str(clip), "--mask", str(tmp / "small_mask.png")], "small_mask.png"


def mask_with_wrong_count(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    make_clip(tmp / "long_mask.mp4", frames=7, audio=False)
    return ["flow", str(clip), "--mask", str(tmp / "long_mask.mp4")], "long_mask.mp4"


def output_is_input(tmp):
    clip = make_clip(tmp / "same.mp4", frames=4, audio=False)
    return ["flow", str(clip), "-o", str(clip)], "same.mp4"


def output_exists(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    (tmp / "taken.safetensors").write_bytes(b"precious")
    return ["flow", str(clip), "-o", str(tmp / "taken.safetensors")], "taken.safetensors"


def output_folder_missing(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    return ["flow", str(clip), "-o", str(tmp / "no" / "such" / "f.safetensors")], "f.safetensors"


def bad_device(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    return ["--device", "cuda:7", "flow", str(clip)], "cuda:7"


def viz_with_unknown_extension(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    return ["flow", str(clip), "--viz", str(tmp / "viz.gif")], "viz.gif"


def image_output_for_a_video(tmp):
    clip = make_clip(tmp / "in.mp4", frames=4, audio=False)
    return ["upscale", str(clip), "--scale", "2", "-o", str(tmp / "big.png")], "big.png"


def reference_of_another_length(tmp):
    clip = make_clip(tmp / "out.mp4", frames=6, audio=False)
    truth = make_clip(tmp / "truth.mp4", frames=4, audio=False)
    return ["eval", str(clip), "--reference", str(truth)], "truth.mp4: has 4 frames"


# ------------------------------------------------------------------ numbers: NaN, inf, ranges
def fps_nan(tmp):
    return ["flow", str(make_frame_folder(tmp / "frames", frames=3)), "--fps", "nan"], "--fps"


def fps_inf(tmp):
    return ["flow", str(make_frame_folder(tmp / "frames", frames=3)), "--fps", "inf"], "--fps"


def fps_zero(tmp):
    return ["info", str(make_frame_folder(tmp / "frames", frames=3)), "--fps", "0"], "--fps"


def fps_negative(tmp):
    return ["info", str(make_frame_folder(tmp / "frames", frames=3)), "--fps", "-5"], "--fps"


def guidance_nan(tmp):
    return upscale(tmp, "--guidance", "nan"), "--guidance"


def guidance_inf(tmp):
    return upscale(tmp, "--guidance", "inf"), "--guidance"


def guidance_negative(tmp):
    return upscale(tmp, "--guidance", "-1"), "--guidance"


def first_guidance_nan(tmp):
    return upscale(tmp, "--first-guidance", "nan"), "--first-guidance"


def first_guidance_minus_inf(tmp):
    return upscale(tmp, "--first-guidance", "-inf"), "--first-guidance"


def guidance_fraction_nan(tmp):
    return upscale(tmp, "--guidance-fraction", "nan"), "--guidance-fraction"


def guidance_fraction_above_one(tmp):
    return upscale(tmp, "--guidance-fraction", "2"), "--guidance-fraction"


def inpaint_guidance_nan(tmp):
    video = clip(tmp)
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(tmp / "mask.png")
    args = ["inpaint", str(video), "--mask", str(tmp / "mask.png"), "--guidance", "nan"]
    return args, "--guidance"


def inpaint_option(tmp, *option: str) -> list[str]:
    video = clip(tmp)
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(tmp / "mask.png")
    return ["inpaint", str(video), "--mask", str(tmp / "mask.png"), *option]


def mask_dilate_negative(tmp):
    return inpaint_option(tmp, "--mask-dilate", "-1"), "--mask-dilate"


def feather_huge(tmp):
    return inpaint_option(tmp, "--feather", "100000"), "--feather"


def crf_above_51(tmp):
    return upscale(tmp, "--crf", "60"), "--crf"


def scale_one(tmp):
    return ["upscale", str(clip(tmp)), "--scale", "1"], "--scale 1"


def scale_three(tmp):
    return ["upscale", str(clip(tmp)), "--scale", "3"], "--scale 3"


def steps_zero(tmp):
    return upscale(tmp, "--steps", "0"), "--steps"


def degrade_scale_zero(tmp):
    return ["degrade", str(clip(tmp)), "--scale", "0", "-o", str(tmp / "low.mp4")], "--scale"


def degrade_scale_larger_than_frame(tmp):
    args = ["degrade", str(clip(tmp)), "--scale", "128", "-o", str(tmp / "low.mp4")]
    return args, "in.mp4"


def channels_zero(tmp):
    return ["warp-noise", str(clip(tmp)), "--channels", "0"], "--channels"


def channels_beyond_memory(tmp):
    return ["warp-noise", str(clip(tmp)), "--channels", "100000"], "--channels 100000"


def grid_zero(tmp):
    return ["warp-noise", str(clip(tmp)), "--grid", "0"], "--grid"


def seed_not_a_number(tmp):
    return ["--seed", "one", "flow", str(clip(tmp))], "--seed"


def tile_banana(tmp):
    return upscale(tmp, "--tile", "banana"), "--tile"


def tile_smaller_than_overlap(tmp):
    return upscale(tmp, "--tile", "40", "--tile-overlap", "32"), "--tile 40"


# ---------------------------------------------------------------------------- names and words
def flow_flow_banana(tmp):
    return ["flow", str(clip(tmp)), "--flow", "banana"], "--flow banana"


def warp_noise_noise_banana(tmp):
    return ["warp-noise", str(clip(tmp)), "--noise", "banana"], "--noise banana"


def warp_noise_flow_banana(tmp):
    return ["warp-noise", str(clip(tmp)), "--flow", "banana"], "--flow banana"


def upscale_flow_banana(tmp):
    return upscale(tmp, "--flow", "banana"), "--flow banana"


def upscale_noise_banana(tmp):
    return upscale(tmp, "--noise", "banana"), "--noise banana"


def upscale_sampler_banana(tmp):
    return upscale(tmp, "--sampler", "banana"), "--sampler banana"


def guidance_mode_banana(tmp):
    return upscale(tmp, "--guidance-mode", "banana"), "--guidance-mode banana"


def dtype_banana(tmp):
    return upscale(tmp, "--dtype", "fp8"), "--dtype fp8"


def eval_flow_banana(tmp):
    return ["eval", str(clip(tmp)), "--flow", "banana"], "--flow banana"


def device_banana(tmp):
    return ["--device", "banana", "info", str(clip(tmp))], "--device banana"


def unknown_option(tmp):
    return ["flow", str(clip(tmp)), "--colour", "red"], "--colour"


def inpaint_without_mask(tmp):
    return ["inpaint", str(clip(tmp))], "--mask"


def mask_missing(tmp):
    args = ["inpaint", str(clip(tmp)), "--mask", str(tmp / "nomask.png")]
    return args, "nomask.png"


def mask_is_text(tmp):
    (tmp / "mask.png").write_text("not an image")
    return ["inpaint", str(clip(tmp)), "--mask", str(tmp / "mask.png")], "mask.png"


def frame_claiming_60000_pixels_square(tmp):
    folder = make_frame_folder(tmp / "frames", frames=2)
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    (folder / "frame_9.png").write_bytes(png)
    return ["flow", str(folder)], "frame_9.png"


def frame_folder_with_a_broken_png(tmp):
    folder = make_frame_folder(tmp / "frames", frames=3)
    (folder / "frame_2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return ["flow", str(folder)], "frame_2.png"


def input_is_a_text_file(tmp):
    (tmp / "notes.txt").write_text("hello")
    return ["info", str(tmp / "notes.txt")], "notes.txt"


def empty_frame_folder(tmp):
    (tmp / "frames").mkdir()
    return ["upscale", str(tmp / "frames"), "--scale", "2"], "frames"


# ---------------------------------------------------------------------------------- presets
def preset_unknown_name(tmp):
    return upscale(tmp, "--preset", "ultra"), "--preset ultra"


def preset_file_missing(tmp):
    return upscale(tmp, "--preset", str(tmp / "mine.yaml")), "mine.yaml"


def preset_bad_yaml(tmp):
    (tmp / "bad.yaml").write_text("steps: [1, 2\nguidance: {\n")
    return upscale(tmp, "--preset", str(tmp / "bad.yaml")), "bad.yaml"


def preset_nan(tmp):
    (tmp / "nan.yaml").write_text("guidance: .nan\n")
    return upscale(tmp, "--preset", str(tmp / "nan.yaml")), "guidance"


def preset_inf(tmp):
    (tmp / "inf.yaml").write_text("eta: .inf\n")
    return upscale(tmp, "--preset", str(tmp / "inf.yaml")), "eta"


def preset_unknown_key(tmp):
    (tmp / "key.yaml").write_text("sharpness: 3\n")
    return upscale(tmp, "--preset", str(tmp / "key.yaml")), "sharpness"


def preset_wrong_type(tmp):
    (tmp / "type.yaml").write_text("steps: many\n")
    return upscale(tmp, "--preset", str(tmp / "type.yaml")), "steps"


def preset_not_a_mapping(tmp):
    (tmp / "list.yaml").write_text("- steps\n- 4\n")
    return upscale(tmp, "--preset", str(tmp / "list.yaml")), "list.yaml"


def preset_of_the_other_command(tmp):
    return upscale(tmp, "--preset", "inpaint"), "--preset inpaint"


# ----------------------------------------------------------------------------------- models
def model_missing(tmp):
    return upscale(tmp, "--model", str(tmp / "nothing.safetensors")), "nothing.safetensors"


def model_garbage(tmp):
    (tmp / "junk.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))
    return upscale(tmp, "--model", str(tmp / "junk.safetensors")), "junk.safetensors"


def model_without_config(tmp):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, str(tmp / "plain.safetensors"))
    return upscale(tmp, "--model", str(tmp / "plain.safetensors")), "plain.safetensors"


def model_with_bad_config(tmp):
    def damage(state, metadata):
        metadata["config"] = '{"task": "sr", "block_out_channels": '

    path = tiny_model(tmp / "badconfig.safetensors", edit=damage)
    return upscale(tmp, "--model", str(path)), "badconfig.safetensors"


def model_with_unknown_config_field(tmp):
    def damage(state, metadata):
        metadata["config"] = json.dumps(json.loads(metadata["config"]) | {"wings": 2})

    path = tiny_model(tmp / "wings.safetensors", edit=damage)
    return upscale(tmp, "--model", str(path)), "wings.safetensors"


def model_with_wrong_weights(tmp):
    def damage(state, metadata):
        name = next(iter(state))
        state[name] = torch.zeros(*state[name].shape[:-1], state[name].shape[-1] + 1)

    path = tiny_model(tmp / "shape.safetensors", edit=damage)
    return upscale(tmp, "--model", str(path)), "shape.safetensors"


def model_with_unknown_key(tmp):
    def damage(state, metadata):
        state["extra.weight"] = torch.zeros(2)

    path = tiny_model(tmp / "extra.safetensors", edit=damage)
    return upscale(tmp, "--model", str(path)), "extra.safetensors"


def model_for_the_other_task(tmp):
    path = tiny_model(tmp / "inpainter.safetensors", task="inpaint")
    return upscale(tmp, "--model", str(path)), "inpainter.safetensors"


def model_builtin_of_the_other_task(tmp):
    return upscale(tmp, "--model", "builtin:inpaint"), "builtin:inpaint"


def model_not_a_model(tmp):
    (tmp / "model.txt").write_text("weights")
    return upscale(tmp, "--model", str(tmp / "model.txt")), "model.txt"


def lpips_weights_garbage(tmp):
    (tmp / "alex.pth").write_bytes(np.random.default_rng(1).bytes(2048))
    return ["eval", str(clip(tmp)), "--lpips-weights", str(tmp / "alex.pth")], "alex.pth"


def lpips_weights_not_a_state_dict(tmp):
    torch.save(torch.zeros(3), tmp / "tensor.pth")
    return ["eval", str(clip(tmp)), "--lpips-weights", str(tmp / "tensor.pth")], "tensor.pth"


def lpips_weights_of_wrong_shapes(tmp):
    torch.save({"features.0.weight": torch.zeros(2, 2)}, tmp / "small.pth")
    return ["eval", str(clip(tmp)), "--lpips-weights", str(tmp / "small.pth")], "small.pth"


def fid_weights_garbage(tmp):
    (tmp / "inc.pth").write_bytes(np.random.default_rng(2).bytes(2048))
    return ["eval", str(clip(tmp)), "--fid-weights", str(tmp / "inc.pth")], "inc.pth"


def fid_weights_of_another_network(tmp):
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp / "other.pth")
    return ["eval", str(clip(tmp)), "--fid-weights", str(tmp / "other.pth")], "other.pth"


def raft_weights_garbage(tmp):
    (tmp / "raft.pth").write_bytes(b"not weights")
    args = ["flow", str(clip(tmp)), "--flow", "raft", "--raft-weights", str(tmp / "raft.pth")]
    return args, "raft.pth"


def eval_flows_file_garbage(tmp):
    (tmp / "f.safetensors").write_bytes(b"garbage" * 10)
    return ["eval", str(clip(tmp)), "--flows", str(tmp / "f.safetensors")], "f.safetensors"


def eval_flows_and_flow_from(tmp):
    video = clip(tmp)
    return ["eval", str(video), "--flows", "x.safetensors", "--flow-from", str(video)], "--flows"


def eval_clip_model_without_prompt(tmp):
    (tmp / "clip").mkdir()
    return ["eval", str(clip(tmp)), "--clip-model", str(tmp / "clip")], "--prompt"


# ---------------------------------------------------------------------------------- outputs
def flow_output_named_mp4(tmp):
    return ["flow", str(clip(tmp)), "-o", str(tmp / "flows.mp4")], "flows.mp4"


def warp_noise_output_named_mp4(tmp):
    return ["warp-noise", str(clip(tmp)), "-o", str(tmp / "noise.mp4")], "noise.mp4"


def warp_noise_stats_not_json(tmp):
    return ["warp-noise", str(clip(tmp)), "--stats", str(tmp / "stats.txt")], "stats.txt"


def warp_noise_stats_exists(tmp):
    (tmp / "stats.json").write_text("{}")
    return ["warp-noise", str(clip(tmp)), "--stats", str(tmp / "stats.json")], "stats.json"


def report_exists(tmp):
    (tmp / "out.report.json").write_text('{"mine": true}')
    return upscale(tmp, "-o", str(tmp / "out.mp4")), "out.report.json"


def frames_csv_exists(tmp):
    (tmp / "out.frames.csv").write_text("frame\n0\n")
    return upscale(tmp, "-o", str(tmp / "out.mp4")), "out.frames.csv"


def report_path_is_the_input(tmp):
    folder = make_frame_folder(tmp / "out.report.json", frames=3)
    return ["upscale", str(folder), "--scale", "2", "-o", str(tmp / "out.mp4")], "out.report.json"


def upscale_output_exists(tmp):
    (tmp / "out.mp4").write_bytes(b"an earlier result")
    return upscale(tmp, "-o", str(tmp / "out.mp4")), "out.mp4"


def upscale_output_is_input(tmp):
    return upscale(tmp, "-o", str(tmp / "in.mp4")), "in.mp4"


def interrupted_state_without_resume(tmp):
    (tmp / ".out.mp4.resume").mkdir()
    (tmp / ".out.mp4.resume" / "state.safetensors").write_bytes(b"state")
    return upscale(tmp, "-o", str(tmp / "out.mp4")), "--resume"


def degrade_output_exists(tmp):
    (tmp / "low.mp4").write_bytes(b"mine")
    return ["degrade", str(clip(tmp)), "-o", str(tmp / "low.mp4")], "low.mp4"


def eval_output_not_json(tmp):
    return ["eval", str(clip(tmp)), "-o", str(tmp / "eval.txt")], "eval.txt"


def eval_csv_exists(tmp):
    (tmp / "eval.csv").write_text("mine")
    return ["eval", str(clip(tmp)), "--csv", str(tmp / "eval.csv")], "eval.csv"


def eval_plot_is_the_reference(tmp):
    video = clip(tmp)
    return ["eval", str(video), "--plot", str(video)], "in.mp4"


def cache_dir_is_a_file(tmp):
    (tmp / "cache").write_text("a file")
    return ["flow", str(clip(tmp)), "--cache-dir", str(tmp / "cache")], "--cache-dir"


def upscale_cache_dir_is_a_file(tmp):
    (tmp / "cache").write_text("a file")
    return upscale(tmp, "--cache-dir", str(tmp / "cache")), "--cache-dir"


def cache_dir_read_only(tmp):
    mount_tmpfs(tmp / "cache", read_only=True)
    return ["flow", str(clip(tmp)), "--cache-dir", str(tmp / "cache")], "--cache-dir"


def output_folder_read_only(tmp):
    video = clip(tmp)
    mount_tmpfs(tmp / "ro", read_only=True)
    args = ["flow", str(video), "--no-cache", "-o", str(tmp / "ro" / "f.safetensors")]
    return args, "f.safetensors"


def upscale_output_folder_read_only(tmp):
    mount_tmpfs(tmp / "ro", read_only=True)
    return upscale(tmp, "-o", str(tmp / "ro" / "out.mp4")), "out.mp4"


def disk_full_writing_flows(tmp):
    mount_tmpfs(tmp / "full", size="16k")
    output = tmp / "full" / "f.safetensors"
    args = ["flow", str(clip(tmp, frames=6)), "--no-cache", "-o", str(output)]
    return args, "f.safetensors"


def disk_full_writing_noise(tmp):
    mount_tmpfs(tmp / "full", size="16k")
    args = ["warp-noise", str(clip(tmp)), "--no-cache", "-o", str(tmp / "full" / "n.safetensors")]
    return args, "n.safetensors"


def disk_full_writing_a_video(tmp):
    mount_tmpfs(tmp / "full", size="8k")
    source = noise_frames(tmp / "noisy")
    return ["degrade", str(source), "--scale", "2", "-o", str(tmp / "full" / "low.mp4")], "low.mp4"


def disk_full_writing_frames(tmp):
    mount_tmpfs(tmp / "full", size="8k")
    source = noise_frames(tmp / "noisy")
    return ["degrade", str(source), "--scale", "2", "-o", str(tmp / "full" / "frames")], "frames"


def noise_frames(folder, frames=6):
    """Frames of random pixels: they compress to nothing less than their size."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index in range(frames):
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), np.uint8)).save(folder / f"{index}.png")
    return folder


CASES = [
    mask_dilate_negative,
    feather_huge,
    crf_above_51,
    missing,
    empty,
    text_named_mp4,
    truncated,
    audio_only,
    zero_frames,
    single_frame,
    frames_of_odd_sizes,
    sixteen_bit_frames,
    grayscale_frames,
    alpha_frames,
    mask_of_wrong_size,
    mask_with_wrong_count,
    output_is_input,
    output_exists,
    output_folder_missing,
    bad_device,
    viz_with_unknown_extension,
    image_output_for_a_video,
    reference_of_another_length,
    fps_nan,
    fps_inf,
    fps_zero,
    fps_negative,
    guidance_nan,
    guidance_inf,
    guidance_negative,
    first_guidance_nan,
    first_guidance_minus_inf,
    guidance_fraction_nan,
    guidance_fraction_above_one,
    inpaint_guidance_nan,
    scale_one,
    scale_three,
    steps_zero,
    degrade_scale_zero,
    degrade_scale_larger_than_frame,
    channels_zero,
    channels_beyond_memory,
    grid_zero,
    seed_not_a_number,
    tile_banana,
    tile_smaller_than_overlap,
    flow_flow_banana,
    warp_noise_noise_banana,
    warp_noise_flow_banana,
    upscale_flow_banana,
    upscale_noise_banana,
    upscale_sampler_banana,
    guidance_mode_banana,
    dtype_banana,
    eval_flow_banana,
    device_banana,
    unknown_option,
    inpaint_without_mask,
    mask_missing,
    mask_is_text,
    frame_claiming_60000_pixels_square,
    frame_folder_with_a_broken_png,
    input_is_a_text_file,
    empty_frame_folder,
    preset_unknown_name,
    preset_file_missing,
    preset_bad_yaml,
    preset_nan,
    preset_inf,
    preset_unknown_key,
    preset_wrong_type,
    preset_not_a_mapping,
    preset_of_the_other_command,
    model_missing,
    model_garbage,
    model_without_config,
    model_with_bad_config,
    model_with_unknown_config_field,
    model_with_wrong_weights,
    model_with_unknown_key,
    model_for_the_other_task,
    model_builtin_of_the_other_task,
    model_not_a_model,
    lpips_weights_garbage,
    lpips_weights_not_a_state_dict,
    lpips_weights_of_wrong_shapes,
    fid_weights_garbage,
    fid_weights_of_another_network,
    raft_weights_garbage,
    eval_flows_file_garbage,
    eval_flows_and_flow_from,
    eval_clip_model_without_prompt,
    flow_output_named_mp4,
    warp_noise_output_named_mp4,
    warp_noise_stats_not_json,
    warp_noise_stats_exists,
    report_exists,
    frames_csv_exists,
    report_path_is_the_input,
    upscale_output_exists,
    upscale_output_is_input,
    interrupted_state_without_resume,
    degrade_output_exists,
    eval_output_not_json,
    eval_csv_exists,
    eval_plot_is_the_reference,
    cache_dir_is_a_file,
    upscale_cache_dir_is_a_file,
    cache_dir_read_only,
    output_folder_read_only,
    upscale_output_folder_read_only,
    disk_full_writing_flows,
    disk_full_writing_noise,
    disk_full_writing_a_video,
    disk_full_writing_frames,
    *TRAIN_CASES,
]


def snapshot(folder):
    """Every file's bytes and every folder (as None) under ``folder``."""
    return {p: p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[case.__name__ for case in CASES])
def test_bad_input_gives_one_line_exit_2_and_no_output(tmp_path, monkeypatch, capfd, case):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    args, names = case(work)
    try:
        before = snapshot(tmp_path)
        code = main(["--device", "cpu", *args] if args[0] != "--device" else args)
        captured = capfd.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, captured.err
        assert len(lines) == 1, captured.err
        assert names in lines[0] and "Traceback" not in captured.err
        assert snapshot(tmp_path) == before  # nothing written, nothing changed
    finally:
        while MOUNTS:
            subprocess.run(["umount", "-l", str(MOUNTS.pop())], check=False)


@pytest.mark.slow
def test_the_installed_script_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "wdiff", "flow", str(tmp_path / "missing.mp4")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "missing.mp4" in result.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "wdiff", "--debug", "flow", str(tmp_path / "missing.mp4")],
        capture_output=True,
        text=True,
    )
    assert debug.returncode == 2 and "Traceback" in debug.stderr
