#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when they are missing.
# Each suite that needs a program adds it to NEEDED (binary name -> Debian package).
set -euo pipefail
declare -A NEEDED=(
  [chromium]=chromium   # tests/browser.rs drives headless Chromium over the DevTools protocol
)
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
