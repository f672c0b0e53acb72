"""Turn a ``--device`` string into a torch device that exists on this machine."""

from __future__ import annotations

import re

from wdiff.errors import WdiffError


def resolve_device(spec: str):
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present) -> ``torch.device``.

    Raises WdiffError when the device is malformed or not visible to torch.
    """
    text = spec.strip().lower()
    match = re.fullmatch(r"auto|cpu|cuda(?::(\d+))?", text)
    if not match:
        raise WdiffError(f"--device {spec}: not a device; use cpu, cuda, cuda:N or auto")
    import torch

    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise WdiffError(
            f"--device {spec}: torch sees no CUDA GPU on this machine; use --device cpu"
        )
    index = int(match[1] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise WdiffError(
            f"--device {spec}: torch sees {count} CUDA GPU(s) (cuda:0..cuda:{count - 1}); "
            "pick one of those"
        )
    return torch.device(f"cuda:{index}")
