"""The flows of a whole video: forward/backward flow and validity between consecutive frames."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from wdiff.errors import WdiffError
from wdiff.outputs import save_tensors

TENSOR_NAMES = ("forward", "backward", "valid_forward", "valid_backward")


@dataclass
class FlowField:
    """``forward[j]`` maps frame j to j+1, ``backward[j]`` frame j+1 to j (pixels, ``(dx, dy)``).

    forward, backward: float32 ``(N-1, 2, H, W)``; valid_forward, valid_backward: bool
    ``(N-1, 1, H, W)`` (``valid_forward[j]`` is over frame j's pixels, ``valid_backward[j]``
    over frame j+1's).
    """

    forward: torch.Tensor
    backward: torch.Tensor
    valid_forward: torch.Tensor
    valid_backward: torch.Tensor
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return self.forward.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.forward.shape[-1], self.forward.shape[-2]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in TENSOR_NAMES}

    def save(self, path: Path) -> None:
        """Write a safetensors file atomically (temporary beside ``path``, then rename)."""
        tensors = {name: tensor.contiguous().cpu() for name, tensor in self.tensors().items()}
        save_tensors(tensors, Path(path), self.metadata)

    @classmethod
    def load(cls, path: Path) -> FlowField:
        path = Path(path)
        if not path.is_file():
            raise WdiffError(f"{path}: no such flows file; make one with `wdiff flow`")
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                metadata = dict(handle.metadata() or {})
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise WdiffError(
                f"{path}: not a readable flows file ({error}); recompute it with `wdiff flow`"
            ) from error
        missing = [name for name in TENSOR_NAMES if name not in tensors]
        if missing:
            raise WdiffError(
                f"{path}: flows file lacks {', '.join(missing)}; recompute it with `wdiff flow`"
            )
        return cls(**{name: tensors[name] for name in TENSOR_NAMES}, metadata=metadata)

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], **metadata) -> FlowField:
        return cls(
            **{name: tensors[name] for name in TENSOR_NAMES},
            metadata={key: _text(value) for key, value in metadata.items()},
        )


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
