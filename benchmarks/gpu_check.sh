#!/usr/bin/env bash
# The device checks, as one prepared run on a machine with an NVIDIA GPU (a session's lent H100/H200; not CI):
# compile-check the CUDA sources for the device's architecture, run the rasteriser tests (the CUDA ones run only
# there), run the CUDA tests again under compute-sanitizer's memcheck, then benchmarks/bench_raster_gpu.py.
# gsplat, when its wheel is carried in .whl/, is JIT-built in the background meanwhile (its PyPI wheel compiles
# its CUDA sources on first import) and its test and timings run at the end if the build finished in time.
#
#     OUT=/some/dir bash benchmarks/gpu_check.sh [image.png]
#
# Everything lands in $OUT (logs and raster_gpu.json). Each step has its own time limit, so that one stall
# cannot eat the device time of the others; the whole run takes ~4-6 minutes on an H100.
set -u
out="${OUT:-/tmp/gpu_check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 INRCODEC_CACHE_DIR=/tmp/inrcodec_cache TORCH_EXTENSIONS_DIR=/tmp/torch_ext
py="${PYTHON:-python3}"
image="${1:-}"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }

{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; nvcc --version | tail -2
  $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))"
  nproc; } > "$out/env.log" 2>&1
cat "$out/env.log"
cap=$($py -c "import torch; a, b = torch.cuda.get_device_capability(0); print(f'{a}{b}')" 2>/dev/null || echo 90)

gsplat_pid=""
if ls .whl/gsplat-*.whl >/dev/null 2>&1; then
    $py -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/gsplat-*.whl && export PYTHONPATH=/tmp/site
    # Exported so that the later test and benchmark processes find this build (other flags would rebuild it).
    export FAST_COMPILE=1 MAX_JOBS=12 TORCH_CUDA_ARCH_LIST="${cap:0:1}.${cap:1}"
    ( timeout 330 $py -c \
        "import gsplat.cuda._backend as b; print('gsplat backend loaded:', b._C is not None)" ) > "$out/gsplat_build.log" 2>&1 &
    gsplat_pid=$!
    stamp "gsplat JIT build started in the background"
fi

stamp "check_nvcc.sh for sm_$cap"
ARCH="sm_$cap" timeout 120 bash cuda/check_nvcc.sh >> "$out/env.log" 2>&1; echo "check_nvcc rc=$?" | tee -a "$out/env.log"

stamp "rasteriser tests (CPU and CUDA)"
timeout 300 $py -m pytest tests/test_kernels.py tests/test_kernels_factor.py -q -p no:cacheprovider -k "not gsplat" \
    > "$out/pytest_kernels.log" 2>&1; echo "pytest rc=$?" | tee -a "$out/pytest_kernels.log"
tail -5 "$out/pytest_kernels.log"

stamp "CUDA tests under compute-sanitizer memcheck"
timeout 180 compute-sanitizer --tool memcheck --error-exitcode 9 $py -m pytest tests/test_kernels.py -q \
    -p no:cacheprovider -k "TestCuda and not gsplat and not large" > "$out/memcheck.log" 2>&1
echo "memcheck rc=$?" | tee -a "$out/memcheck.log"
grep -E "ERROR SUMMARY|passed|failed" "$out/memcheck.log" | tail -3

stamp "bench_raster_gpu.py"
timeout 240 $py benchmarks/bench_raster_gpu.py --out "$out/raster_gpu.json" ${image:+--image "$image"} \
    > "$out/bench.log" 2>&1; echo "bench rc=$?" | tee -a "$out/bench.log"
tail -4 "$out/bench.log"

if [ -n "$gsplat_pid" ]; then
    stamp "waiting for the gsplat build"
    wait "$gsplat_pid"; echo "gsplat build rc=$?" | tee -a "$out/gsplat_build.log"
    tail -3 "$out/gsplat_build.log"
    if grep -q "loaded: True" "$out/gsplat_build.log"; then
        timeout 120 $py -m pytest tests/test_kernels.py -q -p no:cacheprovider -k gsplat > "$out/pytest_gsplat.log" 2>&1
        echo "gsplat pytest rc=$?" | tee -a "$out/pytest_gsplat.log"
        timeout 150 $py benchmarks/bench_raster_gpu.py --out "$out/raster_gpu_with_gsplat.json" --fit-steps 10 \
            --fit-cpu-steps 1 --repeats 10 >> "$out/bench.log" 2>&1; echo "bench (gsplat) rc=$?" | tee -a "$out/bench.log"
    fi
fi
stamp "done"
