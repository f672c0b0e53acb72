"""Flows streamed a pair at a time: safetensors rows written in place, the cache's per-pair
checksums, `wdiff flow`'s file and mask completion, each equal to the whole-video computation
(every pair in memory at once, as wdiff did before flows were streamed)."""

import errno
import json

import numpy as np
import pytest
import torch
from media import make_clip
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from wdiff import flow as flows
from wdiff.cli import main
from wdiff.flow.cache import ChecksummedWriter
from wdiff.flow.field import TENSOR_NAMES
from wdiff.tensor_file import Rows, RowWriter, TensorFile
from wdiff.video import open_video


def whole_video_flows(reader, estimator) -> dict[str, torch.Tensor]:
    frames = np.stack(list(reader.frames()))
    forward = estimator(frames[:-1], frames[1:])
    backward = estimator(frames[1:], frames[:-1])
    return {
        "forward": forward,
        "backward": backward,
        "valid_forward": flows.consistency_mask(forward, backward),
        "valid_backward": flows.consistency_mask(backward, forward),
    }


def assert_equal_fields(field, tensors: dict[str, torch.Tensor]) -> None:
    for name in TENSOR_NAMES:
        assert torch.equal(getattr(field, name)[:], tensors[name]), name


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = make_clip(
        tmp_path_factory.mktemp("clip") / "in.mp4", frames=11, size=(64, 48), audio=False
    )
    reader = open_video(path)
    estimator = flows.make_estimator("dis", dis_preset="fast")
    return reader, estimator, whole_video_flows(reader, estimator)


def test_rows_written_in_place_make_save_files_file(tmp_path):
    generator = torch.Generator().manual_seed(0)
    tensors = {
        name: (torch.randn(5, 3, 4, generator=generator) * 50).to(dtype)
        for name, dtype in [
            ("f32", torch.float32),
            ("mask", torch.bool),
            ("half", torch.float16),
            ("bf16", torch.bfloat16),
            ("i64", torch.int64),
            ("u8", torch.uint8),
            ("a_f32", torch.float32),
        ]
    }
    specs = {name: (tensor.dtype, tuple(tensor.shape)) for name, tensor in tensors.items()}
    for metadata in (None, {"method": "dis"}, {"b": "2", "a": "1", "c": "é"}):
        with open(tmp_path / "rows.safetensors", "w+b") as handle:
            writer = RowWriter(handle, specs, metadata)
            for row in (4, 0, 2, 1, 3):  # any order
                for name, tensor in tensors.items():
                    writer.write(name, row, tensor[row : row + 1])
        loaded = load_file(str(tmp_path / "rows.safetensors"))
        assert all(torch.equal(loaded[name], tensor) for name, tensor in tensors.items())
        with safe_open(str(tmp_path / "rows.safetensors"), framework="pt") as handle:
            assert (handle.metadata() or None) == metadata
            assert torch.equal(handle.get_slice("f32")[1:3], tensors["f32"][1:3])
        if metadata is None or len(metadata) == 1:  # save_file orders several keys at random
            save_file(tensors, str(tmp_path / "whole.safetensors"), metadata=metadata)
            whole = (tmp_path / "whole.safetensors").read_bytes()
            assert (tmp_path / "rows.safetensors").read_bytes() == whole


def test_rows_are_read_like_a_tensor(tmp_path):
    tensor = torch.arange(5 * 2 * 3 * 4, dtype=torch.float32).reshape(5, 2, 3, 4)
    save_file({"t": tensor}, str(tmp_path / "t.safetensors"))
    rows = TensorFile.open(tmp_path / "t.safetensors").rows("t")
    assert rows.shape == tensor.shape and len(rows) == 5 and rows.dtype == torch.float32
    for key in (2, -1, slice(1, 3), slice(3, None), slice(None, -2), (slice(0, 2), 1), (4, 0)):
        assert torch.equal(rows[key], tensor[key]), key
    with pytest.raises(IndexError):
        rows[5]


def test_cache_entry_read_lazily_equals_the_whole_video_computation(clip, tmp_path):
    reader, estimator, whole = clip
    cache = flows.TensorCache(tmp_path / "cache")
    cold, hit = flows.estimate_video_flows(reader, estimator, cache=cache)
    assert not hit and isinstance(cold.forward, Rows)
    assert_equal_fields(cold, whole)
    warm, hit = flows.estimate_video_flows(reader, estimator, cache=cache)
    assert hit and isinstance(warm.forward, Rows) and warm.pairs == 10 and warm.size == (64, 48)
    assert_equal_fields(warm, whole)
    assert torch.equal(warm.valid_backward[3], whole["valid_backward"][3])
    uncached, _ = flows.estimate_video_flows(reader, estimator)  # a scratch file
    assert_equal_fields(uncached, whole)


def test_a_damaged_pair_is_detected_and_the_entry_recomputed(clip, tmp_path):
    reader, estimator, whole = clip
    cache = flows.TensorCache(tmp_path / "cache")
    flows.estimate_video_flows(reader, estimator, cache=cache)
    (entry,) = (tmp_path / "cache" / "flow").iterdir()
    with safe_open(str(entry), framework="pt") as handle:
        pairs = len(handle.metadata()["checksums"].split(","))
    assert pairs == 10
    header = int.from_bytes(entry.read_bytes()[:8], "little")
    begin, end = json.loads(entry.read_bytes()[8 : 8 + header])["backward"]["data_offsets"]
    raw = bytearray(entry.read_bytes())
    raw[8 + header + begin + 6 * (end - begin) // 10 + 17] ^= 0x01  # one bit of pair 6
    entry.write_bytes(bytes(raw))
    again, hit = flows.estimate_video_flows(reader, estimator, cache=cache)
    assert not hit and cache.discarded == [entry]
    assert_equal_fields(again, whole)
    assert flows.TensorCache(tmp_path / "cache").open(entry.stem) is not None


def test_a_cache_that_cannot_be_written_costs_the_entry_not_the_run(clip, tmp_path, monkeypatch):
    reader, estimator, whole = clip
    write = ChecksummedWriter.write

    def full_disk(self, start, rows):
        if isinstance(getattr(self.handle, "name", None), str) and start >= 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, start, rows)

    monkeypatch.setattr(ChecksummedWriter, "write", full_disk)
    cache = flows.TensorCache(tmp_path / "cache")
    field, hit = flows.estimate_video_flows(reader, estimator, cache=cache)
    assert not hit and len(cache.unwritten) == 1 and "No space" in cache.unwritten[0]
    assert_equal_fields(field, whole)
    assert list((tmp_path / "cache" / "flow").iterdir()) == []  # no entry, no partial file


def test_flow_command_streams_the_documented_file(clip, tmp_path):
    reader, estimator, whole = clip
    for cache in (["--cache-dir", str(tmp_path / "c")], ["--no-cache"]):
        out = tmp_path / f"flows{len(cache)}.safetensors"
        args = ["-q", "flow", str(reader.info.path), "--dis-preset", "fast", "-o", str(out)]
        assert main([*args, *cache]) == 0
        loaded = load_file(str(out))
        assert set(loaded) == set(TENSOR_NAMES)
        assert all(torch.equal(loaded[name], whole[name]) for name in TENSOR_NAMES)
        with safe_open(str(out), framework="pt") as handle:
            metadata = handle.metadata()
        assert metadata["frames"] == "11" and metadata["method"] == "dis"
        assert "checksums" not in metadata
        assert flows.FlowField.load(out).metadata == metadata


@pytest.mark.slow  # over 5 s: 15-26 s on 2 cores at load 7
def test_completion_streamed_equals_the_whole_video_completion(clip):
    reader, estimator, whole = clip
    field, _ = flows.estimate_video_flows(reader, estimator)
    rng = np.random.default_rng(0)
    masks = []
    for _ in range(field.pairs + 1):
        mask = np.zeros((48, 64), bool)
        top, left = rng.integers(0, 30), rng.integers(0, 40)
        mask[top : top + 15, left : left + 20] = True
        masks.append(mask)
    completed = flows.complete_field(field, iter(masks))
    holes = torch.from_numpy(np.stack(masks))[:, None]
    forward = flows.complete_in_mask(whole["forward"], holes[:-1])
    backward = flows.complete_in_mask(whole["backward"], holes[1:])
    assert_equal_fields(
        completed,
        {
            "forward": forward,
            "backward": backward,
            "valid_forward": flows.consistency_mask(forward, backward),
            "valid_backward": flows.consistency_mask(backward, forward),
        },
    )
    assert completed.metadata["completed_in_mask"] == "true"
    with pytest.raises(ValueError, match="fewer masks"):
        flows.complete_field(field, iter(masks[:-1]))
