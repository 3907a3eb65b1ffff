#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when they are missing.
# Each suite that needs a program adds it to NEEDED (binary name -> Debian package).
set -euo pipefail
declare -A NEEDED=(
  [chromium]=chromium   # tests/it/browser.rs drives headless Chromium over the DevTools protocol
  # tests/it/metrics.rs: `promtool check metrics|rules` and a real Prometheus scraping the service
  [promtool]=prometheus
  [prometheus]=prometheus
  # tests/it/notify.rs: a real Alertmanager receiving cdnwatch's alerts
  [prometheus-alertmanager]=prometheus-alertmanager
)
missing=()
for bin in "${!NEEDED[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${NEEDED[$bin]}")
done
# Fonts for the browser's screenshots (a recommendation of chromium's, which is not installed below).
[ -d /usr/share/fonts/truetype/liberation ] || missing+=(fonts-liberation)
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
