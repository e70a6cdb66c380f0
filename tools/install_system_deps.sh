#!/usr/bin/env bash
# Debian packages the tests use: Chromium renders the HTML run report headless, and
# chromium-driver lets Selenium drive it through `cxr-edge serve`'s web page.
# Installed only when missing and when we are root (CI runs as root); otherwise the
# browser tests say they were skipped and why.
set -euo pipefail
packages=()
command -v chromium >/dev/null || packages+=(chromium)
command -v chromedriver >/dev/null || packages+=(chromium-driver)
[ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root, not installing ${packages[*]} (browser tests will skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
