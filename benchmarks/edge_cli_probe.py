"""Worker: runs `cxr-edge` (edge.cli.main) with the given arguments, then reports its own
peak resident set (VmHWM of this process's memory map, unaffected by the parent's size).

    python benchmarks/edge_cli_probe.py REPORT.json classify --model M images/ --format json

Standard library plus the edge package, so it runs in the edge venv.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    report, argv = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    from edge.cli import main as edge_main

    code = edge_main(argv)
    result = {"exit_code": code, "seconds_in_process": round(time.perf_counter() - started, 3),
              "vm_hwm_kib": _status_kib("VmHWM"),
              "tensorflow_imported": "tensorflow" in sys.modules}
    with open(report, "w") as handle:
        json.dump(result, handle)
    return code


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
