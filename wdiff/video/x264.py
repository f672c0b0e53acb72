"""libx264 options that make its bitstream a pure function of the frames on this machine.

x264's AVX-512 code (the build PyAV ships, core 165) reads memory it never wrote: with mbtree
and B-frames on, the same frames gave different bitstreams from run to run, depending on
what the heap held before (``MALLOC_PERTURB_`` changes the output; ``asm=0`` and every
instruction set up to AVX2 give one output, the C code's). On a CPU with AVX-512 the encoder
is told to use the instruction sets the CPU has up to AVX2 (x264's SIMD is bit-exact with its
C code, so only the speed depends on the choice). Elsewhere x264 detects the CPU itself.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

# x264's name for an instruction set -> the flag /proc/cpuinfo shows for it
_X264_SETS = {
    "MMX2": "mmxext",
    "SSE": "sse",
    "SSE2": "sse2",
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "SSE4.1": "sse4_1",
    "SSE4.2": "sse4_2",
    "AVX": "avx",
    "FMA3": "fma",
    "AVX2": "avx2",
    "LZCNT": "abm",
    "BMI1": "bmi1",
    "BMI2": "bmi2",
}


def asm_below_avx512(cpu_flags: set[str]) -> str | None:
    """x264's ``asm`` value for a CPU with these /proc/cpuinfo flags: its instruction sets up to
    AVX2, or None (x264's own detection) when the CPU has no AVX-512."""
    if "avx512f" not in cpu_flags:
        return None
    return ",".join(name for name, flag in _X264_SETS.items() if flag in cpu_flags)


@functools.cache
def x264_cpu_options() -> dict[str, str]:
    """Options for PyAV's libx264 stream (``stream.options``) on this machine."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    asm = asm_below_avx512(set(flags))
    return {"x264-params": f"asm={asm}"} if asm else {}


def x265_options() -> dict[str, str]:
    """Options for PyAV's libx265 stream: quiet (x265 logs every run to stderr itself)."""
    return {"x265-params": "log-level=error"}
