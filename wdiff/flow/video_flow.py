"""Flows of a whole video, streamed: only two frames (or a small batch of pairs) in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wdiff.errors import WdiffError
from wdiff.feedback import SILENT, Feedback
from wdiff.flow.cache import TensorCache, content_digest, default_cache_dir
from wdiff.flow.estimators import make_estimator
from wdiff.flow.field import FlowField, field_specs
from wdiff.flow.ops import complete_in_mask, consistency_mask
from wdiff.flow.store import RowSink
from wdiff.video import VideoInfo, VideoReader, fps_text


def check_enough_frames(info: VideoInfo) -> None:
    if info.frame_count < 2:
        raise WdiffError(
            f"{info.path}: has {info.frame_count} frame; flow needs at least 2: give a longer video"
        )


def estimate_video_flows(
    reader: VideoReader,
    estimator,
    *,
    cache: TensorCache | None = None,
    batch: int = 4,
    advance: Callable[[int], None] | None = None,
) -> tuple[FlowField, bool]:
    """Forward/backward flows and validity masks between consecutive frames of ``reader``.

    Returns the field, read lazily from its cache entry (or, without a cache, from an unnamed
    scratch file), and whether it came from the cache. Pairs are estimated, checked and written
    ``batch`` at a time. ``advance(n)`` is called as pairs are done.
    """
    info = reader.info
    check_enough_frames(info)
    metadata = {
        "width": info.width,
        "height": info.height,
        "frames": info.frame_count,
        "fps": fps_text(info.fps),
        "source": info.path.name,
        "estimator": estimator.key,
        "method": estimator.key["method"],
    }
    pairs = info.frame_count - 1
    specs = field_specs(pairs, info.width, info.height)
    key = None
    if cache is not None and cache.folder is not None:
        video = {"frames": info.frame_count, "width": info.width, "height": info.height}
        key = cache.key(video=content_digest(info.path), estimator=estimator.key, **video)
        entry = cache.open(key, specs)  # checked: computed from these, of these shapes
        if entry is not None:
            if advance:
                advance(pairs)
            return FlowField.from_file(entry, **metadata), True
    with RowSink(specs, cache=cache, key=key) as sink:
        for start, rows in _estimated_pairs(reader, estimator, batch):
            sink.write(start, rows)
            if advance:
                advance(rows["forward"].shape[0])
        if sink.done != pairs:
            raise WdiffError(
                f"{info.path}: decoded {sink.done + 1} frames, expected {info.frame_count}"
            )
        file = sink.finish()
    return FlowField.from_file(file, **metadata), False


def _estimated_pairs(
    reader: VideoReader, estimator, batch: int
) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """(first pair, the four tensors of the pairs of the next ``batch`` frames)."""
    done = 0
    previous: np.ndarray | None = None
    for chunk in reader.chunks(batch):
        frames = chunk if previous is None else np.concatenate([previous[None], chunk])
        if len(frames) >= 2:
            firsts, seconds = frames[:-1], frames[1:]
            forward = estimator(firsts, seconds).float().contiguous()
            backward = estimator(seconds, firsts).float().contiguous()
            yield done, _with_validity(forward, backward)
            done += len(firsts)
        previous = frames[-1]


def _with_validity(forward: torch.Tensor, backward: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "forward": forward,
        "backward": backward,
        "valid_forward": consistency_mask(forward, backward),
        "valid_backward": consistency_mask(backward, forward),
    }


def complete_field(field: FlowField, masks: Iterable[np.ndarray | torch.Tensor]) -> FlowField:
    """Fill the flows inside inpainting masks (bool ``(H, W)`` per frame, in order, True =
    missing; e.g. ``MaskReader.frames()``) and re-test validity, a pair at a time.

    ``forward[j]`` lives on frame j's pixels and ``backward[j]`` on frame j+1's, so each is
    completed with its own frame's mask. The result is read lazily from a scratch file beside
    ``field``'s file (or in the temporary folder).
    """
    holes = (_hole(mask) for mask in masks)
    width, height = field.size
    specs = field_specs(field.pairs, width, height)
    with RowSink(specs, folder=field.folder) as sink:
        previous = next(holes, None)
        for index in range(field.pairs):
            hole = next(holes, None)
            if previous is None or hole is None:
                raise ValueError(f"fewer masks than the field's {field.pairs + 1} frames")
            pair = slice(index, index + 1)
            forward = complete_in_mask(field.forward[pair], previous)
            backward = complete_in_mask(field.backward[pair], hole)
            sink.write(index, _with_validity(forward, backward))
            previous = hole
        file = sink.finish()
    return FlowField.from_file(file, **{**field.metadata, "completed_in_mask": "true"})


def _hole(mask: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One frame's mask -> bool ``(1, 1, H, W)``."""
    hole = torch.as_tensor(np.asarray(mask))
    return hole.reshape(1, 1, *hole.shape[-2:]).bool()


@dataclass(frozen=True)
class FlowOptions:
    """How a video's flows are got: the estimator (``method`` dis, farneback or raft; the DIS
    preset; torchvision's RAFT ``large`` or ``small`` from local ``raft_weights``, else torch's
    hub cache) and the cache (``cache_dir``, None = ``default_cache_dir()``; ``use_cache`` False:
    neither read nor written)."""

    method: str = "dis"
    dis_preset: str = "fine"
    raft_model: str = "large"
    raft_weights: Path | None = None
    cache_dir: Path | None = None
    use_cache: bool = True

    def estimator(self, device: torch.device | str = "cpu", option: str = "--flow"):
        """The estimator; ``option`` names the method's option in the error for a bad one."""
        return make_estimator(
            self.method,
            dis_preset=self.dis_preset,
            raft_model=self.raft_model,
            raft_weights=self.raft_weights,
            device=device,
            option=option,
        )

    def cache(self) -> TensorCache:
        return TensorCache((self.cache_dir or default_cache_dir()) if self.use_cache else None)


def video_flows(
    reader: VideoReader,
    estimator,
    cache: TensorCache,
    label: str,
    feedback: Feedback = SILENT,
    name: str | None = None,
) -> tuple[FlowField, bool]:
    """``estimate_video_flows`` with a progress bar ``flow (label)`` (``name: flow (label)``
    given the input's ``name``), and a warning when the cache could not keep the flows.
    Returns the field and whether it came from the cache."""
    description = f"flow ({label})" if name is None else f"{name}: flow ({label})"
    with feedback.bar(description, reader.info.frame_count - 1) as advance:
        result = estimate_video_flows(reader, estimator, cache=cache, advance=advance)
    if cache.unwritten:
        feedback.warn(
            f"the flows were not cached ({cache.unwritten[0]}); the next run computes them again"
        )
    return result
