#!/usr/bin/env bash
# One prepared GPU check, for sessions lent a GPU machine (under 8 minutes on an H100/H200):
# the `gpu` tests, noise warping at 128² and 1024² (CPU and CUDA rows), and guided sampling with
# a randomly initialised full-size SDXL UNet in bf16 at 1024² (seconds per frame, peak memory), and
# a smoke run of every diffusers layout wdiff accepts (tiny random folders built on the spot: SDXL
# inpainting with an EDM scheduler, an fp16-variant folder, SD inpainting, the SD x4 upscaler)
# through `wdiff inpaint`/`upscale` in fp16 on CUDA, the half-precision path a CPU never takes,
# and the GP noise of a 1920x1080 upscale over 30 frames on CUDA (seconds a frame with the
# fresh-plane cap, the cost behind a long 1080p clip, #18).
# Each part has its own time limit, so one that hangs does not cost the rest. JSON and logs go to
# $OUT (default benchmarks/results/gpu_check/); a summary line per part is printed at the end.
#
#   benchmarks/gpu_check.sh            # sets up .venv first if it is missing
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu_check}
mkdir -p "$OUT"
if [ ! -x .venv/bin/python ]; then make setup > "$OUT/setup.log" 2>&1 || exit 1; fi
PY=.venv/bin/python
summary=()

part() {  # part NAME SECONDS COMMAND...: run with a limit, log it, remember its exit status
  local name=$1 limit=$2; shift 2
  local began=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local status=$?
  summary+=("$name: exit $status in $(( $(date +%s) - began )) s (log $OUT/$name.log)")
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
part gpu_tests 150 "$PY" -m pytest -q -m gpu tests/test_gpu.py --junitxml="$OUT/gpu_tests.xml"
part noise_warp 150 "$PY" benchmarks/noise_warp.py --sizes 128 1024 --frames 16 \
  --out "$OUT/noise_warp.json"
part sdxl_full 150 "$PY" benchmarks/sdxl_sampling.py --device cuda --mode full --frames 3 \
  --steps 10 --out "$OUT/sdxl_sampling_full.json"
part sdxl_cheap 90 "$PY" benchmarks/sdxl_sampling.py --device cuda --mode cheap --frames 3 \
  --steps 10 --out "$OUT/sdxl_sampling_cheap.json"
part layouts_fp16 120 "$PY" benchmarks/layouts_smoke.py --device cuda --dtype fp16 \
  --out "$OUT/layouts_fp16.json"
part gp_tiles_1080 90 "$PY" benchmarks/gp_tiles.py --device cuda --frames 30 --every 5 \
  --out "$OUT/gp_tiles_cuda.json"

printf '%s\n' "${summary[@]}"
for file in "$OUT"/sdxl_sampling_*.json "$OUT"/layouts_fp16.json; do [ -f "$file" ] && cat "$file"; done
grep -h -E "(gp|integral) " "$OUT/noise_warp.log" | grep -E " (128|1024)²" | head -20
