"""Real DICOM counterparts for tests: an Orthanc PACS, dcmtk's storescu/echoscu, dciodvfy.

Everything listens on 127.0.0.1 only. Orthanc 1.10.1 has no configuration key for a bind
address (civetweb gets just the integer "HttpPort", and the DICOM server binds every
interface), and "RemoteAccessAllowed": false only makes the HTTP server refuse remote
clients once they are connected. So Orthanc runs with a tiny LD_PRELOAD library, built
with the machine's C compiler on first use, that turns every IPv4/IPv6 bind() into a bind
to the loopback address (same port); start() then checks in /proc that each socket
Orthanc listens on is a loopback one, and refuses to go on otherwise.

    with Orthanc(tmp_path / "pacs") as pacs:
        assert echoscu(pacs.dicom_port, pacs.ae_title).returncode == 0
        storescu(pacs.dicom_port, [path], pacs.ae_title)
        [tags] = pacs.wait_for_instances(1, timeout=10)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

# tool -> the Debian package that ships it
PACKAGES = {
    "storescu": "dcmtk",
    "echoscu": "dcmtk",
    "storescp": "dcmtk",
    "dcmdump": "dcmtk",
    "Orthanc": "orthanc",
    "dciodvfy": "dicom3tools",
    "cc": "gcc",
    "gcc": "gcc",
}
# Orthanc lives in /usr/sbin, which is not on a normal user's PATH on Debian.
_EXTRA_PATH = ["/usr/sbin", "/usr/local/sbin", "/sbin"]


def which(tool: str) -> str | None:
    """shutil.which, also looking in the sbin folders."""
    found = shutil.which(tool)
    if found is None:
        found = shutil.which(tool, path=os.pathsep.join(_EXTRA_PATH))
    return found


def require(*tools: str) -> None:
    """Skips the calling test unless every tool is installed."""
    for tool in tools:
        if which(tool) is None:
            package = PACKAGES.get(tool, tool)
            pytest.skip(f"{tool} (Debian package {package}) is not installed; "
                        "make setup installs it")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------ loopback-only bind()

_LOOPBACK_BIND_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

/* Every IPv4/IPv6 bind() goes to the loopback address, port unchanged. */
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real_bind;
    if (!real_bind) real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in copy;
        memcpy(&copy, addr, sizeof copy);
        copy.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return real_bind(fd, (const struct sockaddr *)&copy, sizeof copy);
    }
    if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 copy;
        memcpy(&copy, addr, sizeof copy);
        copy.sin6_addr = in6addr_loopback;
        return real_bind(fd, (const struct sockaddr *)&copy, sizeof copy);
    }
    return real_bind(fd, addr, len);
}
"""
_loopback_library: Path | None = None


def loopback_bind_library() -> Path:
    """The LD_PRELOAD library (built once per test process, removed at exit)."""
    global _loopback_library
    if _loopback_library is None or not _loopback_library.exists():
        compiler = which("cc") or which("gcc")
        if compiler is None:
            require("gcc")
        folder = Path(tempfile.mkdtemp(prefix="cxr-loopback-bind-"))
        atexit.register(shutil.rmtree, folder, True)
        source, library = folder / "loopback_bind.c", folder / "libloopback_bind.so"
        source.write_text(_LOOPBACK_BIND_C)
        built = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library),
                                str(source), "-ldl"], capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError(f"building {library.name} failed:\n{built.stderr}")
        _loopback_library = library
    return _loopback_library


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(hex local address, port) of every TCP socket the process `pid` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.append((address, int(port, 16)))
    return found


_LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


# ------------------------------------------------------------------------------ Orthanc


class Orthanc:
    """A real Orthanc PACS on 127.0.0.1 with its own config and storage under `root`.

    `modalities`: name -> (AE title, host, port), Orthanc's "DicomModalities" (the peers it
    may C-STORE/C-ECHO to). Ports are chosen once, so a restart after stop() comes back on
    the same ports with the same storage.
    """

    def __init__(self, root: Path, ae_title: str = "ORTHANC",
                 modalities: dict[str, tuple[str, str, int]] | None = None):
        require("Orthanc")
        self.root = Path(root)
        self.ae_title = ae_title
        self.modalities = dict(modalities or {})
        self.dicom_port = free_port()
        self.http_port = free_port()
        while self.http_port == self.dicom_port:
            self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.storage = self.root / "storage"
        self.config_path = self.root / "orthanc.json"
        self.log_path = self.root / "orthanc.log"
        self.process: subprocess.Popen | None = None
        self.start_seconds: float | None = None  # how long the last start() took

    def config(self) -> dict:
        return {
            "Name": f"cxr-edge-test-{self.ae_title}",
            "DicomAet": self.ae_title,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "StorageDirectory": str(self.storage),
            "IndexDirectory": str(self.storage),
            "DicomServerEnabled": True,
            "HttpServerEnabled": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomCheckCalledAet": False,
            "DicomModalities": {name: list(peer) for name, peer in self.modalities.items()},
            "Plugins": [],
            "LuaScripts": [],
            "StorageCompression": False,
            "ConcurrentJobs": 1,
            "HttpThreadsCount": 8,
            "DicomThreadsCount": 2,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "SaveJobs": False,
            "HttpDescribeErrors": True,
        }

    def start(self, timeout: float = 30) -> None:
        """Starts Orthanc; returns once REST /system answers and the DICOM port takes TCP."""
        if self.process is not None and self.process.poll() is None:
            return
        self.storage.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        env = dict(os.environ, LD_PRELOAD=str(loopback_bind_library()))
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([which("Orthanc"), str(self.config_path)],
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            cwd=self.root, env=env, start_new_session=True)
        try:
            deadline = began + timeout
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"Orthanc exited with {self.process.returncode} while "
                                       f"starting\n{self.log_tail()}")
                if self._system_answers() and port_accepts(self.dicom_port):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Orthanc did not come up within {timeout} s "
                                       f"(http {self.http_port}, dicom {self.dicom_port})"
                                       f"\n{self.log_tail()}")
                time.sleep(0.05)
            self.start_seconds = time.monotonic() - began
            wide = [(a, p) for a, p in listening_addresses(self.process.pid)
                    if a not in _LOOPBACK_HEX]
            if wide:
                raise RuntimeError(f"Orthanc listens beyond 127.0.0.1: {wide}")
        except BaseException:
            self.stop(graceful=False)
            raise

    def _system_answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/system", timeout=1) as reply:
                return reply.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout: float = 15, graceful: bool = True) -> None:
        """SIGTERM and wait (Orthanc takes ~3 s to shut down), SIGKILL if it does not.

        graceful=False kills at once: fast, and what a crashed PACS looks like."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if graceful:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                pass
        process.kill()
        process.wait(10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no Orthanc log)"
        return "--- Orthanc log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def get(self, path: str, timeout: float = 10) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as reply:
            return reply.read()

    def get_json(self, path: str, timeout: float = 10):
        return json.loads(self.get(path, timeout))

    def instances(self) -> list[dict]:
        """The simplified tags of every stored instance, plus "OrthancID" (its REST id)."""
        found = []
        for orthanc_id in self.get_json("/instances"):
            tags = self.get_json(f"/instances/{orthanc_id}/tags?simplify")
            tags["OrthancID"] = orthanc_id
            found.append(tags)
        return found

    def instance_file(self, orthanc_id: str) -> bytes:
        """The stored Part 10 file, byte for byte."""
        return self.get(f"/instances/{orthanc_id}/file")

    def wait_for_instances(self, count: int, timeout: float = 10) -> list[dict]:
        """instances() once at least `count` are stored; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.instances()
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"Orthanc holds {len(found)} instances after {timeout} s, "
                                   f"expected {count}\n{self.log_tail()}")
            time.sleep(0.1)

    def __enter__(self) -> Orthanc:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------- dcmtk and co.


def storescu(port: int, files: list[Path], called_ae: str, calling_ae: str = "STORESCU",
             timeout: float = 60, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """dcmtk storescu of `files` to 127.0.0.1:port, proposing only the contexts they need.

    Text output (stdout/stderr) is kept; the return code is not checked. `args` are extra
    storescu options (e.g. "-v", "-nh")."""
    require("storescu")
    seconds = str(max(1, int(timeout)))
    command = [which("storescu"), "-aet", calling_ae, "-aec", called_ae, "--required",
               "-to", seconds, "-ta", seconds, "-td", seconds, *args,
               "127.0.0.1", str(port), *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout + 10)


def echoscu(port: int, called_ae: str, calling_ae: str = "ECHOSCU",
            timeout: float = 30) -> subprocess.CompletedProcess:
    """dcmtk echoscu (C-ECHO) to 127.0.0.1:port; return code 0 when the peer answered."""
    require("echoscu")
    seconds = str(max(1, int(timeout)))
    command = [which("echoscu"), "-aet", calling_ae, "-aec", called_ae,
               "-to", seconds, "-ta", seconds, "-td", seconds, "127.0.0.1", str(port)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout + 10)


def dciodvfy_output(path: Path) -> list[str]:
    """Every line dciodvfy (dicom3tools) prints about `path`."""
    require("dciodvfy")
    done = subprocess.run([which("dciodvfy"), str(path)], capture_output=True, text=True,
                          timeout=60)
    return (done.stdout + done.stderr).splitlines()


def dciodvfy_errors(path: Path) -> list[str]:
    """The lines of dciodvfy's output that start with "Error"."""
    return [line for line in dciodvfy_output(path) if line.startswith("Error")]
