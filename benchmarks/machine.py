"""The machine a benchmark ran on: CPU, cores, memory, load, software versions, date."""

import datetime
import os
import platform
import subprocess
from importlib import metadata

SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "neon", "asimd")


def describe(edge_python: str) -> dict:
    cpu = _cpuinfo()
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cpu_model": cpu.get("model name") or cpu.get("Model") or platform.processor(),
        "cpu_count": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)),
        "simd_flags": [f for f in SIMD_FLAGS if f in cpu.get("flags", cpu.get("Features", ""))
                       .split()],
        "ram_gb": round(_meminfo_kib("MemTotal") / 1024 ** 2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "tfx": _version("tfx"),
        "ai_edge_litert_pipeline_venv": _version("ai-edge-litert"),
        "ai_edge_litert_edge_venv": _edge_litert(edge_python),
        "edge_python": edge_python,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        **_code_state(),
    }


def _code_state() -> dict:
    """The commit measured, and the files that differed from it (a shared working tree)."""
    def git(*args):
        done = subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return done.stdout if done.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=all")
               .splitlines() if line[3:].endswith(".py")]
    return {"git_commit": git("rev-parse", "--short", "HEAD").strip() or None,
            "git_uncommitted_py": changed}


def _cpuinfo() -> dict:
    info = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def _meminfo_kib(key: str) -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _edge_litert(python: str) -> str | None:
    done = subprocess.run(
        [python, "-c", "from importlib import metadata; print(metadata.version('ai-edge-litert'))"],
        capture_output=True, text=True)
    return done.stdout.strip() or None
