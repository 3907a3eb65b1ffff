#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when they are missing.
# Suites add their packages to NEEDED (binary name -> Debian package).
set -euo pipefail
declare -A NEEDED=(
  # tests/metrics.rs: `promtool check metrics|rules` and a real Prometheus scraping the service
  [promtool]=prometheus
  [prometheus]=prometheus
)
missing=()
for bin in "${!NEEDED[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${NEEDED[$bin]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing test dependencies: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # Without systemd (containers, CI) a package's service start fails harmlessly; --no-install-recommends
  # keeps Prometheus's node exporter and the like out.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  for bin in "${!NEEDED[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || { echo "$bin is still missing after installing ${NEEDED[$bin]}" >&2; exit 1; }
  done
fi
