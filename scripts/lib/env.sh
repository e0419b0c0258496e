# shellcheck shell=bash
# Sourced by the scripts (`source "$(dirname "$0")/lib/env.sh"`): where the project's torch environment is, and how
# a missing Debian package is installed. Sets
#   SSMAX_TORCH_VERSION   the torch wheel the project builds against (its LibTorch)
#   SSMAX_TORCH_ENV       the virtual environment holding it, shared by every clone on the machine
#                         (default /opt/ssmax-gpt/torch-<version>; set it to use another)
#   SSMAX_TORCH_PYTHON    that environment's python3 (the reference, torchrun, transformers, tensorboard)
# and offers
#   install_missing_packages PKG...   apt-get installs the packages that are not installed (as root, or with sudo)
SSMAX_TORCH_VERSION=2.11.0
SSMAX_TORCH_ENV=${SSMAX_TORCH_ENV:-/opt/ssmax-gpt/torch-$SSMAX_TORCH_VERSION}
SSMAX_TORCH_PYTHON=$SSMAX_TORCH_ENV/bin/python3

install_missing_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
