#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when they are missing.
# Today the suite needs nothing beyond the Rust toolchain and gcc; later suites add their packages
# to NEEDED (binary name -> Debian package).
set -euo pipefail
declare -A NEEDED=()
missing=()
for bin in "${!NEEDED[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${NEEDED[$bin]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing test dependencies: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
