"""``--data photos``: the Debian packages' photographs, their fixed held-out split, the error
when they are not installed. A fake install in tmp_path stands in for the packages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wdiff import datasets
from wdiff.datasets import PHOTO_SOURCES, PhotoSource, photo_files, photo_images, shrink_to
from wdiff.errors import WdiffError


def fake_install(root: Path, sources=PHOTO_SOURCES, size=(40, 24)) -> None:
    """Every file of ``sources`` under ``root`` as a small image (videos: empty files)."""
    for source in sources:
        for file in source.files:
            path = root / source.folder / file
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix in datasets.VIDEO_SUFFIXES:
                path.write_bytes(b"")
            else:
                Image.new("RGB", size, (200, 100, 50)).save(path)


def test_split_is_fixed_disjoint_and_covers_every_file(tmp_path):
    fake_install(tmp_path)
    train = photo_files("train", [tmp_path])
    held = photo_files("held-out", [tmp_path])
    total = sum(len(source.files) for source in PHOTO_SOURCES)
    assert len(train) + len(held) == total
    assert not set(train) & set(held)
    # by file alone: the same split every time, about an eighth held out
    assert held == photo_files("held-out", [tmp_path])
    assert 0.05 < len(held) / total < 0.25
    names = {path.name for path in held}
    assert "Dune.jpg" in names and "vtest.avi" not in names


def test_missing_packages_are_named_in_one_line(tmp_path):
    partial = [source for source in PHOTO_SOURCES if source.package != "kphotoalbum"]
    fake_install(tmp_path, partial)
    with pytest.raises(WdiffError) as error:
        photo_files("train", [tmp_path])
    message = str(error.value)
    assert "\n" not in message
    assert "kphotoalbum" in message and "make photo-data" in message
    assert "mate-backgrounds" not in message
    with pytest.raises(WdiffError, match="plasma-workspace-wallpapers"):
        photo_files("held-out", [tmp_path / "nothing"])


def test_files_are_found_in_any_root(tmp_path):
    first, second = tmp_path / "system", tmp_path / "cache"
    fake_install(first, [s for s in PHOTO_SOURCES if s.package != "kphotoalbum"])
    fake_install(second, [s for s in PHOTO_SOURCES if s.package == "kphotoalbum"])
    found = photo_files("train", [first, second])
    assert any(second in path.parents for path in found)
    assert any(first in path.parents for path in found)


def test_photo_images_are_rgb_and_shrunk(tmp_path, monkeypatch):
    source = PhotoSource("fake", "photos", ("a.png", "b.jpg", "c.png"), "CC0")
    fake_install(tmp_path, [source], size=(100, 70))
    monkeypatch.setattr(datasets, "PHOTO_SOURCES", (source,))
    monkeypatch.setattr(datasets, "PHOTO_SHORT_SIDE", 30)
    images = photo_images("train", [tmp_path]) + photo_images("held-out", [tmp_path])
    assert len(images) == 3
    for image in images:
        assert image.dtype == np.uint8 and image.shape == (17, 25, 3)  # 70 -> 35 -> 17


def test_shrink_to_box_filters_by_two():
    image = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    assert shrink_to(image, 8) is image
    small = shrink_to(image, 3)
    assert small.shape == (4, 3, 3)
    assert small[0, 0, 0] == round(image[:2, :2, 0].mean())
