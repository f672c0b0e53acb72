"""safetensors files written and read a row (a slice of the first dimension) at a time.

safetensors has no streaming writer, but its layout is simple: an 8-byte little-endian header
length, a JSON header (``__metadata__``, then per tensor its ``dtype``, ``shape`` and
``data_offsets`` into the data), padded with spaces to a multiple of 8, then each tensor's raw
little-endian bytes. With every shape known up front the header is written first and each row
at its offset, so no tensor is ever held whole. Tensors are laid out as ``save_file`` lays them
out (widest dtype first, then by name) and metadata keys are sorted: for the same tensors the
file equals ``save_file``'s whenever that writes the metadata in the same order.

Rows are read with plain reads, not ``safe_open``'s memory map: the pages of a map count in the
process's resident memory for as long as the file is open.
"""

from __future__ import annotations

import json
import operator
import os
import struct
from pathlib import Path
from typing import BinaryIO

import torch

# safetensors' dtype names, in its order (``save_file`` puts later ones first)
DTYPES = {
    torch.bool: "BOOL",
    torch.uint8: "U8",
    torch.int8: "I8",
    torch.int16: "I16",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int32: "I32",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int64: "I64",
}
TORCH_DTYPES = {name: dtype for dtype, name in DTYPES.items()}
RANK = {name: rank for rank, name in enumerate(DTYPES.values())}

Specs = dict[str, tuple[torch.dtype, tuple[int, ...]]]


def _row_bytes(dtype: torch.dtype, shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape[1:]:
        count *= size
    return count * dtype.itemsize


def header_bytes(specs: Specs, metadata: dict[str, str]) -> tuple[bytes, dict[str, int]]:
    """The file's first bytes (length and padded JSON header) for tensors ``name -> (dtype,
    shape)``, and where each tensor's data starts in the file."""
    order = sorted(specs, key=lambda name: (-RANK[DTYPES[specs[name][0]]], name))
    entries: dict = {"__metadata__": dict(sorted(metadata.items()))} if metadata else {}
    offset, starts = 0, {}
    for name in order:
        dtype, shape = specs[name]
        size = _row_bytes(dtype, shape) * shape[0]
        entries[name] = {"dtype": DTYPES[dtype], "shape": list(shape)}
        entries[name]["data_offsets"] = [offset, offset + size]
        starts[name], offset = offset, offset + size
    text = json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, {n: s + 8 + len(text) for n, s in starts.items()}


class RowWriter:
    """Write a safetensors file into ``handle`` (opened ``w+b``): the header at once, then rows
    of each tensor at their place (``write``); unwritten rows stay zero."""

    def __init__(self, handle: BinaryIO, specs: Specs, metadata: dict[str, str] | None = None):
        self.handle, self.specs = handle, dict(specs)
        header, self._starts = header_bytes(self.specs, metadata or {})
        self._header_size = len(header)
        end = max(self._starts[n] + _row_bytes(*s) * s[1][0] for n, s in self.specs.items())
        handle.seek(0)
        handle.write(header)
        handle.truncate(end)

    def write(self, name: str, start: int, rows: torch.Tensor) -> None:
        """Write ``rows`` (shape ``(n, *shape[1:])``, the tensor's dtype) as rows ``start..``."""
        dtype, shape = self.specs[name]
        if rows.dtype != dtype or tuple(rows.shape[1:]) != shape[1:] or start < 0:
            raise ValueError(f"{name}: rows {tuple(rows.shape)} {rows.dtype} do not fit {shape}")
        if start + rows.shape[0] > shape[0]:
            raise ValueError(f"{name}: rows {start}..{start + rows.shape[0]} past {shape[0]}")
        self.handle.seek(self._starts[name] + start * _row_bytes(dtype, shape))
        self.handle.write(tensor_bytes(rows).numpy())

    def rewrite_metadata(self, metadata: dict[str, str]) -> None:
        """Replace the metadata by one that encodes to a header of the same length."""
        header, _ = header_bytes(self.specs, metadata)
        if len(header) != self._header_size:
            raise ValueError("the new metadata changes the header's length")
        self.handle.seek(0)
        self.handle.write(header)

    def flush(self) -> None:
        self.handle.flush()


class TensorFile:
    """A safetensors file opened for reading rows (``read``, ``rows``) without loading tensors.

    ``handle`` is a binary file open for reading; ``path`` names it in errors (None: unnamed).
    Raises ValueError when the header does not describe the file.
    """

    def __init__(self, handle: BinaryIO, path: Path | None = None):
        self.handle, self.path = handle, path
        size = os.fstat(handle.fileno()).st_size
        head = os.pread(handle.fileno(), 8, 0)
        if len(head) < 8:
            raise ValueError("shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, 100_000_000):
            raise ValueError("header length past the end of the file")
        header = json.loads(os.pread(handle.fileno(), length, 8))
        if not isinstance(header, dict) or not all(isinstance(v, dict) for v in header.values()):
            raise ValueError("the header is not a safetensors header")
        self.metadata: dict[str, str] = dict(header.pop("__metadata__", None) or {})
        self._tensors: dict[str, tuple[torch.dtype, tuple[int, ...], int]] = {}
        for name, entry in header.items():
            dtype, shape = TORCH_DTYPES[entry["dtype"]], tuple(entry["shape"])
            begin, end = entry["data_offsets"]
            if end - begin != _row_bytes(dtype, shape) * (shape[0] if shape else 1):
                raise ValueError(f"{name}: data size does not match its shape")
            if 8 + length + end > size:
                raise ValueError(f"{name}: data past the end of the file")
            self._tensors[name] = (dtype, shape, 8 + length + begin)

    @classmethod
    def open(cls, path: Path) -> TensorFile:
        handle = open(path, "rb")  # noqa: SIM115 - kept open for the rows' reads
        try:
            return cls(handle, Path(path))
        except (ValueError, KeyError, TypeError):
            handle.close()
            raise

    def names(self) -> list[str]:
        return list(self._tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._tensors[name][1]

    def dtype(self, name: str) -> torch.dtype:
        return self._tensors[name][0]

    def read(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows ``start..stop-1`` of tensor ``name`` (clipped to its length), a new tensor."""
        dtype, shape, offset = self._tensors[name]
        start, stop = max(0, min(start, shape[0])), max(0, min(stop, shape[0]))
        stop = max(start, stop)
        rows = torch.empty((stop - start, *shape[1:]), dtype=dtype)
        view = memoryview(tensor_bytes(rows).numpy()) if rows.numel() else memoryview(b"")
        position, done = offset + start * _row_bytes(dtype, shape), 0
        while done < len(view):
            got = os.preadv(self.handle.fileno(), [view[done:]], position + done)
            if got <= 0:
                raise ValueError(f"{name}: the file ends inside its data")
            done += got
        return rows

    def rows(self, name: str) -> Rows:
        return Rows(self, name)

    def close(self) -> None:
        self.handle.close()


class Rows:
    """A tensor in a ``TensorFile``, indexed like a tensor along its first dimension:
    ``rows[j]``, ``rows[a:b]`` and ``rows[a:b, ...]`` read only those rows."""

    def __init__(self, file: TensorFile, name: str):
        self.file, self.name = file, name
        self.shape = torch.Size(file.shape(name))
        self.dtype = file.dtype(name)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> torch.Tensor:
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if not isinstance(key, slice):
            key = operator.index(key)
            index = key + len(self) if key < 0 else key
            if not 0 <= index < len(self):
                raise IndexError(f"row {key} of {len(self)}")
            return self.file.read(self.name, index, index + 1)[0][rest]
        if key.step not in (None, 1):
            raise TypeError(f"{self.name}: rows are read by an index or a slice of step 1")
        start, stop, _ = key.indices(len(self))
        return self.file.read(self.name, start, stop)[(slice(None), *rest)]


def tensor_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as a flat uint8 CPU tensor (no copy when it is contiguous)."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
