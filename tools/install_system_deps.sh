#!/usr/bin/env bash
# Debian packages the tests use: Chromium renders the HTML run report headless, and
# chromium-driver lets Selenium drive it through `cxr-edge serve`'s web page; the DICOM node's
# tests use dcmtk (storescu/echoscu as the X-ray unit), Orthanc as the PACS and dicom3tools'
# dciodvfy as the validator.
# Installed only when missing and when we are root (CI runs as root); otherwise the
# browser tests say they were skipped and why.
set -euo pipefail
packages=()
command -v chromium >/dev/null || packages+=(chromium)
command -v chromedriver >/dev/null || packages+=(chromium-driver)
command -v storescu >/dev/null || packages+=(dcmtk)
command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || packages+=(orthanc)
command -v dciodvfy >/dev/null || packages+=(dicom3tools)
[ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root, not installing ${packages[*]} (the tests that need them will skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
