#!/usr/bin/env bash
# Installs the Debian 12 packages ssmax-gpt needs, only those missing. Safe to re-run.
set -euo pipefail
packages=(cmake g++ make pkg-config git
          libtorch-dev libcli11-dev nlohmann-json3-dev libspdlog-dev
          libsentencepiece-dev libgtest-dev libcairo2-dev fonts-dejavu-core
          libopenblas0-openmp bible-kjv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The pthread OpenBLAS fights LibTorch's OpenMP threads; the reference BLAS is ~35x slower.
blas=$(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || true)
case "$blas" in
  *openblas-openmp*) ;;
  *) echo "setup: pointing libblas.so.3 at OpenBLAS (OpenMP); it was '${blas:-unset}'"
     sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
     $sudo_cmd update-alternatives --set libblas.so.3-x86_64-linux-gnu \
       /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 ;;
esac
