"""``--data photos``: the Debian packages' photographs, their fixed held-out split, the error
when they are not installed. A fake install in tmp_path stands in for the packages."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wdiff import datasets
from wdiff.datasets import PHOTO_SOURCES, PhotoSource, photo_files, photo_images, shrink_to
from wdiff.errors import WdiffError
from wdiff.rcc import rcc_files

GCOMPRIS_BUNDLES = Path("/usr/share/gcompris-qt/rcc")


def write_rcc(path: Path, files: dict[str, bytes], version: int = 3, zipped=()) -> None:
    """A Qt resource bundle as Qt's rcc lays it out: header, data, names, then the tree of
    nodes (each directory's children contiguous, breadth first); ``zipped`` names are stored
    as qCompress does (plain length, then zlib)."""
    root: dict = {}
    for name, content in files.items():
        *folders, leaf = name.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = content
    order, first_child = [("", root)], {}
    for index, (_, value) in enumerate(order):  # grows while walked: breadth first
        if isinstance(value, dict):
            first_child[index] = len(order)
            order.extend(sorted(value.items()))
    data, names, tree = bytearray(), bytearray(), bytearray()
    for index, (name, value) in enumerate(order):
        name_offset = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
        if isinstance(value, dict):
            tree += struct.pack(">IHII", name_offset, 2, len(value), first_child[index])
        else:
            zip_it = name in zipped
            stored = struct.pack(">I", len(value)) + zlib.compress(value) if zip_it else value
            tree += struct.pack(">IHHHI", name_offset, int(zip_it), 0, 0, len(data))
            data += struct.pack(">I", len(stored)) + stored
        if version > 1:
            tree += bytes(8)  # last modified
    header = 24 if version == 3 else 20
    data_at, names_at = header, header + len(data)
    tree_at = names_at + len(names)
    head = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    head += struct.pack(">I", 0) if version == 3 else b""
    path.write_bytes(head + data + names + tree)


def png_bytes(size, colour=(200, 100, 50)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def fake_install(root: Path, sources=PHOTO_SOURCES, size=(40, 24)) -> None:
    """Every file of ``sources`` under ``root`` as a small image (videos: empty files; a Qt
    bundle's members: PNG images in a bundle)."""
    bundles: dict[Path, dict[str, bytes]] = {}
    for source in sources:
        for file in source.files:
            installed, _, member = file.partition(":")
            path = root / source.folder / installed
            path.parent.mkdir(parents=True, exist_ok=True)
            if member:
                bundles.setdefault(path, {})[member] = png_bytes(size)
            elif path.suffix in datasets.VIDEO_SUFFIXES:
                path.write_bytes(b"")
            else:
                Image.new("RGB", size, (200, 100, 50)).save(path)
    for path, members in bundles.items():
        write_rcc(path, members)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_files_reads_nested_stored_and_compressed_files(tmp_path, version):
    files = {
        "top.txt": b"at the root",
        "gcompris/src/a/photo.png": png_bytes((5, 3)),
        "gcompris/src/a/notes.txt": b"zipped " * 40,
        "gcompris/src/b/empty": b"",
    }
    write_rcc(tmp_path / "x.rcc", files, version, zipped={"notes.txt"})
    assert dict(rcc_files(tmp_path / "x.rcc")) == files


def test_rcc_files_refuses_other_files_in_one_line(tmp_path):
    (tmp_path / "x.rcc").write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(WdiffError, match="not a Qt resource bundle") as error:
        list(rcc_files(tmp_path / "x.rcc"))
    assert "\n" not in str(error.value)


@pytest.mark.skipif(not GCOMPRIS_BUNDLES.is_dir(), reason="gcompris-qt-data is not installed")
def test_rcc_files_reads_the_installed_gcompris_photographs():
    """The real bundles (make photo-data): every listed photograph is in them and decodes."""
    (source,) = [s for s in PHOTO_SOURCES if s.package == "gcompris-qt-data"]
    members = {}
    for file in source.files:
        bundle, _, member = file.partition(":")
        members.setdefault(bundle, []).append(member)
    for bundle, wanted in members.items():
        content = dict(rcc_files(GCOMPRIS_BUNDLES / bundle))
        for member in wanted:
            with Image.open(io.BytesIO(content[member])) as image:
                assert min(image.size) >= 200


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
    assert any(second in photo.path.parents for photo in found)
    assert any(first in photo.path.parents for photo in found)


def test_photo_images_are_rgb_and_shrunk(tmp_path, monkeypatch):
    source = PhotoSource("fake", "photos", ("a.png", "b.jpg", "c.png"), "CC0")
    fake_install(tmp_path, [source], size=(100, 70))
    monkeypatch.setattr(datasets, "PHOTO_SOURCES", (source,))
    monkeypatch.setattr(datasets, "PHOTO_SHORT_SIDE", 30)
    images = photo_images("train", [tmp_path]) + photo_images("held-out", [tmp_path])
    assert len(images) == 3
    for image in images:
        assert image.dtype == np.uint8 and image.shape == (17, 25, 3)  # 70 -> 35 -> 17


def test_photo_images_read_bundle_members_and_shrink_them_first(tmp_path, monkeypatch):
    source = PhotoSource(
        "fake", "rcc", ("a.rcc:in/one.png", "a.rcc:in/two.png", "b.rcc:x.png"), "CC0", shrink=2
    )
    fake_install(tmp_path, [source], size=(100, 70))
    monkeypatch.setattr(datasets, "PHOTO_SOURCES", (source,))
    images = photo_images("train", [tmp_path]) + photo_images("held-out", [tmp_path])
    assert len(images) == 3
    for image in images:
        assert image.shape == (35, 50, 3) and (image[0, 0] == (200, 100, 50)).all()
    names = sorted(
        photo.name for split in ("train", "held-out") for photo in photo_files(split, [tmp_path])
    )
    assert names == ["one.png", "two.png", "x.png"]
    write_rcc(tmp_path / "rcc/b.rcc", {"y.png": png_bytes((4, 4))})  # x.png gone
    with pytest.raises(WdiffError, match="holds no x.png"):
        photo_images("train", [tmp_path]) + photo_images("held-out", [tmp_path])


def test_shrink_to_box_filters_by_two():
    image = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    assert shrink_to(image, 8) is image
    small = shrink_to(image, 3)
    assert small.shape == (4, 3, 3)
    assert small[0, 0, 0] == round(image[:2, :2, 0].mean())


def test_a_training_folder_reads_webp_beside_png_and_jpg(tmp_path):
    for name, size in (("a.webp", (40, 30)), ("b.png", (20, 24)), ("c.jpg", (24, 20))):
        Image.new("RGB", size, (10, 200, 30)).save(tmp_path / name)
    shapes = sorted(image.shape for image in datasets.folder_images(tmp_path))
    assert shapes == [(20, 24, 3), (24, 20, 3), (30, 40, 3)]
