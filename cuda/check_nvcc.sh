#!/usr/bin/env bash
# Compile-check every CUDA source in this folder (CI runs it wherever nvcc exists; no GPU needed).
# Each .cu is compiled to an object and then linked into a shared library with static cudart, the way
# inrcodec/kernels/_loader.py builds it. Fails on the first error. ARCH overrides the target (default sm_80).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
arch="${ARCH:-sm_80}"
nvcc="${NVCC:-nvcc}"
command -v "$nvcc" >/dev/null || { echo "check_nvcc.sh: nvcc not found" >&2; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
shopt -s nullglob
files=("$here"/*.cu)
[ ${#files[@]} -gt 0 ] || { echo "check_nvcc.sh: no .cu files in $here" >&2; exit 2; }
for f in "${files[@]}"; do
    name="$(basename "$f" .cu)"
    echo "nvcc -arch=$arch: $(basename "$f")"
    "$nvcc" -c -O3 -std=c++17 -arch="$arch" -Xcompiler -fPIC -I "$here" "$f" -o "$out/$name.o"
    "$nvcc" -shared --cudart=static -arch="$arch" "$out/$name.o" -o "$out/$name.so"
done
echo "check_nvcc.sh: ${#files[@]} file(s) OK"
