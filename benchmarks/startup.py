"""Start-up time: wall seconds of `wdiff --help`, `wdiff info` and `wdiff info --json` on the
bundled clip, each in a fresh process (median of --runs, after one warm-up run), next to
`ffprobe` on the same file when it is installed. The target is at most 0.3 s for `info`.

What a shell script pays per call: interpreter start, imports (no torch for these commands),
reading the file's header. Wall and CPU (user + system) seconds are both reported, and the
load average: on a busy machine the wall figures grow, the CPU figures much less.

    python benchmarks/startup.py [--runs 5] [--out benchmarks/results/startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from wdiff.video import resolve_input

TARGET_INFO_SECONDS = 0.3


def wdiff_command(module: bool) -> list[str]:
    """The installed `wdiff` script beside this interpreter, else (or with ``module``)
    `python -m wdiff`, which imports wdiff from the current folder first."""
    script = Path(sys.executable).parent / "wdiff"
    if script.is_file() and not module:
        return [str(script)]
    return [sys.executable, "-m", "wdiff"]


def commands(clip: Path, module: bool) -> dict[str, list[str]]:
    """Label -> command line, ffprobe's only when it is installed."""
    wdiff = wdiff_command(module)
    timed = {
        "wdiff --help": [*wdiff, "--help"],
        "wdiff info": [*wdiff, "info", "builtin:bunny"],
        "wdiff info --json": [*wdiff, "info", "--json", "builtin:bunny"],
    }
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        timed["ffprobe"] = [ffprobe, "-v", "error", "-show_format", "-show_streams", str(clip)]
    return timed


def timed_run(command: list[str]) -> tuple[float, float]:
    """One run's wall time and CPU time (user + system: what load on other cores barely
    changes); a failing command stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(label: str, command: list[str], runs: int) -> dict:
    """Medians of ``runs`` timed runs after one warm-up (files in the page cache)."""
    timed_run(command)
    walls, cpus = zip(*(timed_run(command) for _ in range(runs)), strict=True)
    return {
        "command": label,
        "median_s": round(statistics.median(walls), 3),
        "median_cpu_s": round(statistics.median(cpus), 3),
        "runs_s": [round(t, 3) for t in walls],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/startup.json"))
    parser.add_argument(
        "--module",
        action="store_true",
        help="time `python -m wdiff` (e.g. run in another checkout, to compare)",
    )
    args = parser.parse_args()

    clip = resolve_input("builtin:bunny")
    load = os.getloadavg()
    rows = []
    for label, command in commands(clip, args.module).items():
        row = measure(label, command, args.runs)
        rows.append(row)
        runs = ", ".join(f"{t:.3f}" for t in row["runs_s"])
        print(
            f"{label:>18}  {row['median_s']:6.3f} s wall  {row['median_cpu_s']:6.3f} s CPU  "
            f"(runs: {runs})"
        )
    info = next(row["median_s"] for row in rows if row["command"] == "wdiff info")
    verdict = "meets" if info <= TARGET_INFO_SECONDS else "misses"
    print(
        f"wdiff info {info:.3f} s {verdict} the {TARGET_INFO_SECONDS} s target "
        f"(load average {load[0]:.2f} on {os.cpu_count()} CPUs)"
    )
    if not shutil.which("ffprobe"):
        print("ffprobe is not installed: no comparison")
    result = {
        "benchmark": "startup",
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "runs": args.runs,
        "command": wdiff_command(args.module),
        "target_info_s": TARGET_INFO_SECONDS,
        "info_meets_target": info <= TARGET_INFO_SECONDS,
        "ffprobe": shutil.which("ffprobe"),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
