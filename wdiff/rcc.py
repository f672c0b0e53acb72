"""Files inside a Qt resource bundle (``.rcc``, versions 1 to 3), the form in which some Debian
packages (gcompris-qt-data) install their photographs: a tree of named nodes over one data
block. Only stored and zlib-compressed entries are read; Qt leaves images stored."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from wdiff.errors import WdiffError

_DIRECTORY, _ZLIB, _ZSTD = 0x02, 0x01, 0x04


def rcc_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(name, content)`` of every file in the bundle at ``path``, names ``a/b/c.webp``
    relative to its root, in the bundle's order (sorted by name hash, as Qt writes them)."""
    blob = path.read_bytes()
    if blob[:4] != b"qres":
        raise WdiffError(f"{path}: not a Qt resource bundle (no 'qres' header)")
    version, tree, data, names = struct.unpack_from(">IIII", blob, 4)
    if not 1 <= version <= 3:
        raise WdiffError(f"{path}: Qt resource format {version}; wdiff reads 1 to 3")
    node_size = 14 if version == 1 else 22

    def name_of(node: int) -> str:
        (offset,) = struct.unpack_from(">I", blob, tree + node * node_size)
        (length,) = struct.unpack_from(">H", blob, names + offset)
        start = names + offset + 6  # past the length and the name's hash
        return blob[start : start + 2 * length].decode("utf-16-be")

    def walk(node: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        (flags,) = struct.unpack_from(">H", blob, tree + node * node_size + 4)
        if flags & _DIRECTORY:
            count, first = struct.unpack_from(">II", blob, tree + node * node_size + 6)
            for child in range(first, first + count):
                yield from walk(child, f"{prefix}{name_of(child)}/")
            return
        (offset,) = struct.unpack_from(">I", blob, tree + node * node_size + 10)
        (size,) = struct.unpack_from(">I", blob, data + offset)
        content = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & _ZSTD:
            raise WdiffError(f"{path}: {prefix[:-1]} is zstd-compressed; wdiff reads zlib only")
        if flags & _ZLIB:  # qCompress: the plain length, then a zlib stream
            content = zlib.decompress(content[4:])
        yield prefix[:-1], content

    yield from walk(0, "")
