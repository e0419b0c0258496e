#!/usr/bin/env bash
# Installs what ssmax-gpt needs, only what is missing. Safe to re-run; fast when everything is there.
#   1. Debian 12 packages: compiler, CMake, CLI11, nlohmann_json, spdlog, sentencepiece, cairo, GoogleTest, Boost (CRC),
#      OpenBLAS's OpenMP build (CPU matmuls, src/kernels/gemm.h), the KJV text.
#   2. LibTorch 2.11.0 (CUDA 13.0 build) from PyPI's torch wheel, in a virtual environment that every clone on
#      this machine shares: $SSMAX_TORCH_ENV, default /opt/ssmax-gpt/torch-2.11.0. The wheel holds LibTorch's
#      headers, libraries and CMake config; CMake finds it there (CMakeLists.txt). The same environment's
#      python3 runs the reference-parity test and torchrun.
# The wheel's nvidia-* dependencies are installed too: libtorch_cuda.so needs libcusparseLt, libcufile and
# libnvshmem, which the CUDA 13.0 toolkit does not ship, so `--no-deps` leaves a LibTorch that cannot load.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/env.sh

torch_version=$SSMAX_TORCH_VERSION
safetensors_version=0.8.0
torch_env=$SSMAX_TORCH_ENV

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

install_missing_packages cmake g++ make pkg-config git libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev \
  libsentencepiece-dev libgtest-dev libcairo2-dev libgloo-dev zlib1g-dev libopenblas0-openmp fonts-dejavu-core \
  bible-kjv libboost-dev

# Any python3 with the venv module will do (this machine kind's own, or Debian's with python3-venv).
python3 -m venv --help >/dev/null 2>&1 || install_missing_packages python3 python3-venv
# The environment is complete only once its marker is written: an interrupted install is redone.
marker="$torch_env/.ssmax-setup-complete"
wanted="torch==${torch_version} safetensors==${safetensors_version} numpy"
if [ "$(cat "$marker" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing $wanted into $torch_env (LibTorch, CUDA 13.0 build: 2.7 GB of wheels, 4.7 GB installed, 2-3 minutes)"
  start=$(date +%s)
  parent=$(dirname "$torch_env")
  if [ ! -d "$parent" ] || [ ! -w "$parent" ]; then
    $sudo_cmd mkdir -p "$parent"
    $sudo_cmd chown "$(id -u):$(id -g)" "$parent"
  fi
  [ -x "$torch_env/bin/python3" ] || python3 -m venv "$torch_env"
  # shellcheck disable=SC2086
  "$torch_env/bin/python3" -m pip install --quiet --progress-bar off $wanted
  echo "$wanted" >"$marker"
  echo "setup: ready in $torch_env ($(du -sh "$torch_env" | cut -f1), $(( $(date +%s) - start )) s)"
fi
