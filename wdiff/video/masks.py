"""Inpainting masks from a video, one image, or a folder of images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from wdiff.errors import WdiffError
from wdiff.video.container import FileVideoReader
from wdiff.video.images import _reading_image, list_images
from wdiff.video.info import IMAGE_SUFFIXES, VideoInfo, resolve_input


class MaskReader:
    """Inpainting masks for every frame: white (> half range) = the region to fill.

    The source may be a video, one image used for every frame, or a folder of images. Sizes
    and frame counts must match the video's exactly. ``dilate`` grows every mask by that many
    pixels (a disc), to cover an object's soft edges and halo.
    """

    def __init__(self, spec: str | Path, video: VideoInfo, dilate: int = 0):
        self.path = resolve_input(spec)
        self.video = video
        self.dilate = dilate
        if not self.path.exists():
            raise WdiffError(f"{self.path}: no such mask file or folder; check the --mask path")
        if self.path.is_dir():
            self._files = list_images(self.path)
            if not self._files:
                raise WdiffError(f"{self.path}: the mask folder holds no PNG or JPG images")
            self._check_count(len(self._files))
            for file in self._files:
                with _reading_image(file), Image.open(file) as image:
                    self._check_size(file, image.size)
            self._kind = "folder"
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            self._single = _read_mask_image(self.path)
            self._check_size(self.path, (self._single.shape[1], self._single.shape[0]))
            self._kind = "image"
        else:
            self._video = FileVideoReader(self.path)
            self._check_count(self._video.info.frame_count)
            self._check_size(self.path, self._video.info.size)
            self._kind = "video"

    def _check_size(self, file: Path, size: tuple[int, int]) -> None:
        if tuple(size) != self.video.size:
            raise WdiffError(
                f"{file}: mask is {size[0]}x{size[1]} but the video {self.video.path.name} is "
                f"{self.video.width}x{self.video.height}; give a mask of the video's size"
            )

    def _check_count(self, count: int) -> None:
        if count != self.video.frame_count:
            raise WdiffError(
                f"{self.path}: mask has {count} frames but the video {self.video.path.name} has "
                f"{self.video.frame_count}; give one mask frame per video frame, or one image"
            )

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        """Yield bool masks ``(H, W)``, True where the content is to be filled (dilated)."""
        for mask in self._read(start, count):
            yield dilate_mask(mask, self.dilate)

    def _read(self, start: int, count: int | None) -> Iterator[np.ndarray]:
        stop = (
            self.video.frame_count if count is None else min(self.video.frame_count, start + count)
        )
        if self._kind == "image":
            for _ in range(start, stop):
                yield self._single
        elif self._kind == "folder":
            for file in self._files[start:stop]:
                yield _read_mask_image(file)
        else:
            for frame in self._video.frames(start, stop - start):
                yield frame.astype(np.uint16).sum(axis=2) > 3 * 127


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Bool ``(H, W)`` mask grown by ``pixels`` in every direction (a disc; 0 = unchanged)."""
    if pixels <= 0:
        return mask
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)


def _read_mask_image(file: Path) -> np.ndarray:
    data = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if data is None:
        raise WdiffError(f"{file}: not a readable mask image; give a PNG or JPG")
    half = np.iinfo(data.dtype).max / 2 if data.dtype.kind in "ui" else 0.5
    return data > half
