"""Turn a ``--device`` string into a torch device that exists on this machine."""

from __future__ import annotations

import re

from wdiff.errors import WdiffError


def check_device(spec: str) -> re.Match:
    """The spelling of a ``--device`` checked without importing torch: ``cpu``, ``cuda``,
    ``cuda:N`` or ``auto``; its match (group 1: N). Raises WdiffError otherwise."""
    match = re.fullmatch(r"auto|cpu|cuda(?::(\d+))?", spec.strip().lower())
    if not match:
        raise WdiffError(f"--device {spec}: not a device; use cpu, cuda, cuda:N or auto")
    return match


def resolve_device(spec: str):
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present) -> ``torch.device``.

    Raises WdiffError when the device is malformed or not visible to torch.
    """
    match = check_device(spec)
    text = match[0]
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


def free_memory_bytes(device) -> int | None:
    """Bytes free on ``device`` now (a CUDA GPU's free memory, or the host's available memory
    for the CPU), or None where this platform cannot say."""
    import os

    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: int, device, what: str, fix: str) -> None:
    """Raise WdiffError, before allocating, when ``needed`` bytes exceed what ``device`` has free
    (the host's memory for the CPU). ``what`` names the request, ``fix`` says what to lower."""
    import torch

    free = free_memory_bytes(device)
    if free is not None and needed > free:
        place = "this GPU" if torch.device(device).type == "cuda" else "this machine"
        raise WdiffError(
            f"{what}: needs about {needed / 2**30:.1f} GiB, {place} has "
            f"{free / 2**30:.1f} GiB free; {fix}"
        )
