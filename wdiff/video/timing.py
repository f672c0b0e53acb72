"""When each frame of a video file is shown: read from its packets (no decoding), so that an
output keeps a variable frame rate frame for frame."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av

from wdiff.video.container import ffmpeg_name
from wdiff.video.info import VideoInfo


@dataclass(frozen=True)
class FrameTimes:
    """Presentation times of a stream's frames in display order, in ``time_base`` units,
    the first at 0; ``end``: when the last one stops showing."""

    time_base: Fraction
    pts: tuple[int, ...]
    end: int

    def seconds(self, index: int) -> Fraction:
        return self.pts[index] * self.time_base


def frame_times(info: VideoInfo) -> FrameTimes | None:
    """The frame times of ``info``'s video stream when they are not every ``1 / info.fps``
    (to within a tick of its time base), else None: a constant rate needs none. None also
    when the packets do not give one time per frame (the output is then at ``info.fps``)."""
    if info.is_folder:
        return None
    with av.open(ffmpeg_name(info.path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        stamps = []
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None:
                stamps.append((packet.pts, packet.duration or 0))
    if len(stamps) != info.frame_count or not stamps:
        return None
    stamps.sort()
    first = stamps[0][0]
    pts = tuple(stamp - first for stamp, _ in stamps)
    if len(set(pts)) != len(pts):
        return None
    if all(abs(p * time_base - i / info.fps) <= time_base for i, p in enumerate(pts)):
        return None
    last, duration = stamps[-1]
    if not duration:  # the last frame lasts as long as the one before it
        duration = pts[-1] - pts[-2] if len(pts) > 1 else round(1 / (info.fps * time_base))
    return FrameTimes(time_base, pts, last - first + duration)
