"""Flows of a whole video, streamed: only two frames (or a small batch of pairs) in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wdiff.errors import WdiffError
from wdiff.feedback import SILENT, Feedback
from wdiff.flow.cache import TensorCache, content_digest, default_cache_dir
from wdiff.flow.estimators import make_estimator
from wdiff.flow.field import FlowField
from wdiff.flow.ops import complete_in_mask, consistency_mask
from wdiff.video import VideoInfo, VideoReader


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

    Returns the field and whether it came from the cache. ``advance(n)`` is called as pairs
    are done.
    """
    info = reader.info
    check_enough_frames(info)
    metadata = {
        "width": info.width,
        "height": info.height,
        "frames": info.frame_count,
        "fps": f"{info.fps.numerator}/{info.fps.denominator}",
        "source": info.path.name,
        "estimator": estimator.key,
        "method": estimator.key["method"],
    }
    key = None
    if cache is not None and cache.folder is not None:
        key = cache.key(video=content_digest(info.path), estimator=estimator.key)
        cached = cache.load(key)
        if cached is not None:
            if advance:
                advance(info.frame_count - 1)
            return FlowField.from_tensors(cached, **metadata), True

    pairs = info.frame_count - 1
    shape = (pairs, 2, info.height, info.width)
    forward = torch.empty(shape, dtype=torch.float32)
    backward = torch.empty(shape, dtype=torch.float32)
    done = 0
    previous: np.ndarray | None = None
    for chunk in reader.chunks(batch):
        frames = chunk if previous is None else np.concatenate([previous[None], chunk])
        if len(frames) >= 2:
            firsts, seconds = frames[:-1], frames[1:]
            count = len(firsts)
            forward[done : done + count] = estimator(firsts, seconds)
            backward[done : done + count] = estimator(seconds, firsts)
            done += count
            if advance:
                advance(count)
        previous = frames[-1]
    if done != pairs:
        raise WdiffError(f"{info.path}: decoded {done + 1} frames, expected {info.frame_count}")
    valid_forward = torch.empty((pairs, 1, info.height, info.width), dtype=torch.bool)
    valid_backward = torch.empty_like(valid_forward)
    for start in range(0, pairs, batch):
        part = slice(start, start + batch)
        valid_forward[part] = consistency_mask(forward[part], backward[part])
        valid_backward[part] = consistency_mask(backward[part], forward[part])
    field = FlowField.from_tensors(
        {
            "forward": forward,
            "backward": backward,
            "valid_forward": valid_forward,
            "valid_backward": valid_backward,
        },
        **metadata,
    )
    if key is not None:
        cache.store(key, field.tensors())
    return field, False


def complete_field(field: FlowField, masks: list[np.ndarray] | torch.Tensor) -> FlowField:
    """Fill the flows inside inpainting masks (bool per frame, True = missing) and re-test validity.

    ``forward[j]`` lives on frame j's pixels and ``backward[j]`` on frame j+1's, so each is
    completed with its own frame's mask.
    """
    holes = torch.as_tensor(np.stack(masks) if isinstance(masks, list) else masks)
    holes = holes.reshape(holes.shape[0], 1, *holes.shape[-2:]).bool()
    forward = complete_in_mask(field.forward, holes[:-1])
    backward = complete_in_mask(field.backward, holes[1:])
    return FlowField(
        forward=forward,
        backward=backward,
        valid_forward=consistency_mask(forward, backward),
        valid_backward=consistency_mask(backward, forward),
        metadata={**field.metadata, "completed_in_mask": "true"},
    )


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
) -> tuple[FlowField, bool]:
    """``estimate_video_flows`` with a progress bar ``flow (label)``, and a warning when the
    cache could not keep the flows. Returns the field and whether it came from the cache."""
    with feedback.bar(f"flow ({label})", reader.info.frame_count - 1) as advance:
        result = estimate_video_flows(reader, estimator, cache=cache, advance=advance)
    if cache.unwritten:
        feedback.warn(
            f"the flows were not cached ({cache.unwritten[0]}); the next run computes them again"
        )
    return result
