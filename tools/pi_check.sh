#!/usr/bin/env bash
# make pi-check: prove the edge runner installs and classifies on a Raspberry Pi (arm64, Raspberry
# Pi OS 64-bit = Debian 12, Python 3.11) without a Pi: an arm64 Debian root from debootstrap, the
# aarch64 wheels pip would pick on the Pi, and qemu-user emulating a Pi 4 CPU (cortex-a72).
# Every model classifies the sample images there and must agree with the host run.
#
# No binfmt_misc is registered (none may be here): qemu-aarch64-static runs the arm64 python
# directly, and no arm64 code runs during setup (the base .debs are only unpacked).
#
# Environment: PI_CHECK_DIR (cache, default .pi-check), PI_CPU (cortex-a72 = Pi 4, cortex-a76 =
# Pi 5; never qemu's default "max", which computes wrong int8 results through XNNPACK),
# PI_MODELS (space-separated .tflite files or pushed dirs; default: tests/edge/data/*.tflite),
# EDGE_PYTHON (host python with the edge extra; default .venv-edge/bin/python),
# DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mkdir -p "${PI_CHECK_DIR:-$REPO/.pi-check}" && cd "${PI_CHECK_DIR:-$REPO/.pi-check}" && pwd)
ROOT=$WORK/rootfs
SITE=$WORK/site-packages
CPU=${PI_CPU:-cortex-a72}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
EDGE_PYTHON=${EDGE_PYTHON:-$REPO/.venv-edge/bin/python}
[ -x "$EDGE_PYTHON" ] || EDGE_PYTHON=$(command -v python3)
# Wheels the edge and dicom extras pull in; versions come from constraints.txt.
PACKAGES=(numpy pillow ai-edge-litert pydicom)

log() { echo "pi-check: $*" >&2; }

ensure_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then
    log "needs ${missing[*]}: sudo apt-get install ${missing[*]}"
    exit 2
  fi
  log "installing ${missing[*]} from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

build_root() {
  [ -x "$ROOT/usr/bin/python3.11" ] && return
  log "debootstrap arm64 bookworm into $ROOT (download only, --foreign)"
  rm -rf "$ROOT"
  debootstrap --foreign --arch=arm64 --include=python3,python3-venv,libpython3.11 \
    bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  # Unpack the base .debs instead of running their arm64 maintainer scripts.
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | tar --keep-directory-symlink -x -C "$ROOT"
  done
  [ -x "$ROOT/usr/bin/python3.11" ] || { log "python3.11 missing from $ROOT"; exit 1; }
}

fake_pi_cpuinfo() {
  # LiteRT segfaults under qemu parsing the host's x86 /proc/cpuinfo; qemu's -L serves this.
  # In a container debootstrap makes proc a symlink to the host's /proc: replace it.
  [ -L "$ROOT/proc" ] && rm "$ROOT/proc"
  mkdir -p "$ROOT/proc"
  : >"$ROOT/proc/cpuinfo"
  for core in 0 1 2 3; do
    cat >>"$ROOT/proc/cpuinfo" <<EOF
processor	: $core
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

EOF
  done
  printf 'Hardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n' \
    >>"$ROOT/proc/cpuinfo"
}

install_wheels() {
  local stamp=$SITE/.installed
  if [ -f "$stamp" ] && [ "$stamp" -nt "$REPO/constraints.txt" ]; then return; fi
  log "pip: aarch64 wheels for ${PACKAGES[*]} (what the Pi install fetches)"
  rm -rf "$SITE"
  "$EDGE_PYTHON" -m pip install --quiet --disable-pip-version-check --target "$SITE" \
    --only-binary=:all: --platform manylinux_2_27_aarch64 --platform manylinux2014_aarch64 \
    --python-version 3.11 --implementation cp -c "$REPO/constraints.txt" "${PACKAGES[@]}"
  touch "$stamp"
}

make_samples() {
  local samples=$WORK/samples
  rm -rf "$samples" && mkdir -p "$samples"
  PYTHONPATH=$REPO "$EDGE_PYTHON" - "$samples" <<'EOF'
import shutil, sys
from components.lib.demo_data import generate
generate(sys.argv[1], per_class=2)
try:  # the real CR chest DICOM (MONOCHROME1, 15-bit) when pydicom-data is installed
    from pydicom.data import get_testdata_file
    path = get_testdata_file("RG1_UNCR.dcm", download=False)
    if path:
        shutil.copy(path, sys.argv[1])
except ImportError:
    pass
EOF
  echo "$samples"
}

# Classifies every sample with every model in one interpreter process, one JSON file per model.
DRIVER='
import sys, time
from pathlib import Path
from edge import cli
out_dir, samples, models = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
out_dir.mkdir(parents=True, exist_ok=True)
for index, model in enumerate(models):
    started = time.perf_counter()
    code = cli.main(["classify", "--model", model, samples, "--format", "json",
                     "--out", str(out_dir / f"{index}.json"), "--progress", "never"])
    print(f"{Path(model).name}: exit {code}, {time.perf_counter() - started:.1f} s", file=sys.stderr)
'

main() {
  ensure_tools
  build_root
  fake_pi_cpuinfo
  install_wheels
  local samples models
  samples=$(make_samples)
  if [ -n "${PI_MODELS:-}" ]; then read -r -a models <<<"$PI_MODELS"; else models=("$REPO"/tests/edge/data/*.tflite); fi
  log "host run ($("$EDGE_PYTHON" -c 'import platform; print(platform.machine())'))"
  PYTHONPATH=$REPO "$EDGE_PYTHON" -c "$DRIVER" "$WORK/host" "$samples" "${models[@]}" 2>"$WORK/host.log"
  log "emulated Raspberry Pi: qemu-aarch64-static -cpu $CPU, Debian 12 arm64, Python 3.11"
  local started=$SECONDS
  PYTHONPATH=$SITE:$REPO PYTHONNOUSERSITE=1 qemu-aarch64-static -cpu "$CPU" -L "$ROOT" \
    "$ROOT/usr/bin/python3.11" -c "import platform, sys; print('pi-check: guest', platform.machine(), sys.version.split()[0], file=sys.stderr)"
  PYTHONPATH=$SITE:$REPO PYTHONNOUSERSITE=1 qemu-aarch64-static -cpu "$CPU" -L "$ROOT" \
    "$ROOT/usr/bin/python3.11" -c "$DRIVER" "$WORK/pi" "$samples" "${models[@]}" 2>"$WORK/pi.log" ||
    { tail -20 "$WORK/pi.log" >&2; exit 1; }
  grep -v "^INFO" "$WORK/pi.log" >&2 || true
  log "emulated run took $((SECONDS - started)) s"
  "$EDGE_PYTHON" - "$WORK" "${models[@]}" <<'EOF'
import json, sys
from pathlib import Path
work, models = Path(sys.argv[1]), sys.argv[2:]
failed = False
print(f"{'model':28} {'images':>6} {'errors':>6} {'top-1 agree':>11} {'max |dp|':>10}")
for index, model in enumerate(models):
    host = json.loads((work / "host" / f"{index}.json").read_text())
    pi = json.loads((work / "pi" / f"{index}.json").read_text())
    assert [r["path"] for r in host] == [r["path"] for r in pi], model
    same_status = all(h["status"] == p["status"] for h, p in zip(host, pi))
    ok = [(h, p) for h, p in zip(host, pi) if "probabilities" in h and "probabilities" in p]
    agree = sum(h["predicted_class"] == p["predicted_class"] for h, p in ok)
    diff = max((abs(h["probabilities"][c] - p["probabilities"][c])
                for h, p in ok for c in h["probabilities"]), default=0.0)
    errors = sum(r["status"] == "error" for r in pi)
    # Float kernels may sum in another order on NEON than on AVX; int8 matched bit for bit.
    good = same_status and agree == len(ok) and errors == 0 and diff <= 1e-4
    failed |= not good
    print(f"{Path(model).name[:28]:28} {len(pi):6d} {errors:6d} {agree:>5d}/{len(ok):<5d} "
          f"{diff:10.2e} {'ok' if good else 'MISMATCH'}")
sys.exit(1 if failed else 0)
EOF
}

main "$@"
