"""The flows of a whole video: forward/backward flow and validity between consecutive frames."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wdiff.errors import WdiffError
from wdiff.outputs import atomic_output
from wdiff.tensor_file import Rows, RowWriter, Specs, TensorFile

TENSOR_NAMES = ("forward", "backward", "valid_forward", "valid_backward")


def field_specs(pairs: int, width: int, height: int) -> Specs:
    """The four tensors' dtypes and shapes for ``pairs`` pairs of ``width`` x ``height`` frames."""
    flow, valid = (pairs, 2, height, width), (pairs, 1, height, width)
    return {
        "forward": (torch.float32, flow),
        "backward": (torch.float32, flow),
        "valid_forward": (torch.bool, valid),
        "valid_backward": (torch.bool, valid),
    }


@dataclass
class FlowField:
    """``forward[j]`` maps frame j to j+1, ``backward[j]`` frame j+1 to j (pixels, ``(dx, dy)``).

    forward, backward: float32 ``(N-1, 2, H, W)``; valid_forward, valid_backward: bool
    ``(N-1, 1, H, W)`` (``valid_forward[j]`` is over frame j's pixels, ``valid_backward[j]``
    over frame j+1's). Each is a tensor or, for a field read from a file (``load``, the cache),
    ``tensor_file.Rows``: sliced along the pairs like a tensor (``forward[j - 1 : j]``), it
    reads only those pairs, so no more than a few pairs are ever in memory.
    """

    forward: torch.Tensor | Rows
    backward: torch.Tensor | Rows
    valid_forward: torch.Tensor | Rows
    valid_backward: torch.Tensor | Rows
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return self.forward.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.forward.shape[-1], self.forward.shape[-2]

    @property
    def folder(self) -> Path | None:
        """The folder of the file the field is read from (None: in memory, or unnamed)."""
        path = getattr(getattr(self.forward, "file", None), "path", None)
        return path.parent if path is not None else None

    def batches(
        self, size: int = 1, names: tuple[str, ...] = TENSOR_NAMES
    ) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        """(start, ``name -> pairs start..start+size-1``) over the whole field, in order."""
        for start in range(0, self.pairs, size):
            yield start, {name: getattr(self, name)[start : start + size] for name in names}

    def tensors(self) -> dict[str, torch.Tensor]:
        """All four tensors in memory (small clips and tests; ``batches`` streams)."""
        return {name: getattr(self, name)[:] for name in TENSOR_NAMES}

    def in_memory(self) -> FlowField:
        return FlowField(**self.tensors(), metadata=dict(self.metadata))

    def save(self, path: Path) -> None:
        """Write a safetensors file atomically (temporary beside ``path``, then rename), a few
        pairs at a time; the same file as ``safetensors.torch.save_file`` of ``tensors()``
        with the metadata, its keys sorted."""
        tensors = {name: getattr(self, name) for name in TENSOR_NAMES}
        specs = {name: (tensor.dtype, tuple(tensor.shape)) for name, tensor in tensors.items()}
        with atomic_output(Path(path)) as temporary, open(temporary, "w+b") as handle:
            writer = RowWriter(handle, specs, self.metadata)
            for start, rows in self.batches():
                for name, tensor in rows.items():
                    writer.write(name, start, tensor.contiguous().cpu())

    @classmethod
    def load(cls, path: Path) -> FlowField:
        """The field of a flows file (``wdiff flow``), read lazily."""
        path = Path(path)
        if not path.is_file():
            raise WdiffError(f"{path}: no such flows file; make one with `wdiff flow`")
        try:
            file = TensorFile.open(path)
        except (ValueError, KeyError, TypeError, OSError) as error:
            raise WdiffError(
                f"{path}: not a readable flows file ({error}); recompute it with `wdiff flow`"
            ) from error
        missing = [name for name in TENSOR_NAMES if name not in file.names()]
        if missing:
            file.close()
            raise WdiffError(
                f"{path}: flows file lacks {', '.join(missing)}; recompute it with `wdiff flow`"
            )
        return cls.from_file(file, **file.metadata)

    @classmethod
    def from_file(cls, file: TensorFile, **metadata) -> FlowField:
        """The field whose tensors ``file`` holds, read lazily."""
        return cls(
            **{name: file.rows(name) for name in TENSOR_NAMES},
            metadata={key: _text(value) for key, value in metadata.items()},
        )

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], **metadata) -> FlowField:
        return cls(
            **{name: tensors[name] for name in TENSOR_NAMES},
            metadata={key: _text(value) for key, value in metadata.items()},
        )


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
