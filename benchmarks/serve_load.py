"""`cxr-edge serve` under load: throughput and p95 latency for N concurrent clients.

Starts `cxr-edge serve` with the edge interpreter as its own process on 127.0.0.1 (a free port,
a fresh data dir), waits for /api/health, then for each N in --clients runs N client threads
that each upload X-rays one file per request (as the page does) over a kept-alive connection.
Per round: images/s over the wall time, client-side latency (upload to answer) p50/p95/max,
the server's own per-file latency (decode + classify + heat map) and queue wait, the status
codes, and whether the history grew by exactly the number of uploads (none lost or twice).
Also the installed size of the `edge` extra's closure with and without `serve`.

    .venv/bin/python -m benchmarks.serve_load --model DIR_OR_TFLITE [--clients 1,4,16,50]
        [--requests 100] [--image-px 1024] [--out FILE.json]

`make bench` runs it as the "serve" topic on the pushed model (run_all.py).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import REPO_ROOT, edge_python
from benchmarks.footprint import extra_closures

DEFAULT_CLIENTS = (1, 4, 16, 50)
STARTUP_TIMEOUT_S = 60


def measure(python: str, model: str, clients=DEFAULT_CLIENTS, requests: int = 100,
            image_px: int = 1024, work_dir: str | None = None) -> dict:
    """Runs every round against one server process; returns the numbers (JSON-able)."""
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other work on the machine
    images = synthetic_xrays(max(requests, max(clients)), image_px)
    if work_dir:
        os.makedirs(work_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="serve-bench-", dir=work_dir)
    port = _free_port()
    with open(os.path.join(work, "serve.log"), "w") as log:
        server = subprocess.Popen(
            [python, "-m", "edge.cli", "serve", "--model", model, "--port", str(port),
             "--data-dir", os.path.join(work, "data"), "--queue-size", str(max(64, *clients))],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        try:
            startup_s = _wait_until_up(port, server, work)
            model_info = _get_json(port, "/api/model")
            rounds = [_round(port, n, max(requests, n), images) for n in clients]
        finally:
            server.terminate()
            server.wait(30)
    shutil.rmtree(work, ignore_errors=True)  # kept (with serve.log) only when a round failed
    return {
        "server_python": python,
        "model": {key: model_info.get(key) for key in ("version", "variant", "quantization",
                                                       "input_size", "runtime", "has_attention")},
        "image_px": image_px,
        "image_kb_mean": round(statistics.mean(len(i) for i in images) / 1024, 1),
        "startup_s": round(startup_s, 2),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "rounds": rounds,
        "closure": extra_closures(python),
    }


def synthetic_xrays(count: int, size: int) -> list[bytes]:
    """Distinct smooth grayscale PNGs about the size of a downscaled radiograph."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 110 + 70 * np.sin(xx * 5) * np.cos(yy * 3) + 40 * yy
    images = []
    for _ in range(count):
        pixels = base + rng.normal(0, 6, (size, size)) + rng.uniform(-20, 20)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


def render_markdown(results: dict) -> str:
    """The RESULTS.md section for the serve topic (and the closure sizes)."""
    serve = results.get("serve")
    if not serve:
        return ""
    model, closure = serve["model"], serve["closure"]
    lines = ["## `cxr-edge serve` under load", "",
             f"One `cxr-edge serve` process (`{serve['server_python']}`), model "
             f"{model['version']} ({model['variant'] or model['quantization']}, "
             f"{model['input_size']} px, {model['runtime']}), {serve['cpu_count']} CPUs (load "
             f"average {serve['load_average_at_start'][0]} at the start); each "
             f"client uploads {serve['image_px']} px PNGs ({serve['image_kb_mean']} KB) one per "
             "request. Latency: upload to answer, seen by the client. Recorded: history rows "
             "added = uploads.", "",
             "| clients | uploads | images/s | p50 ms | p95 ms | max ms | server ms (median) | "
             "queue wait p95 ms | statuses | recorded |", "|" + "---|" * 10]
    for r in serve["rounds"]:
        lines.append(f"| {r['clients']} | {r['uploads']} | {r['images_per_s']} | "
                     f"{r['latency_ms_p50']} | {r['latency_ms_p95']} | {r['latency_ms_max']} | "
                     f"{r['server_latency_ms_median']} | {r['queued_ms_p95']} | "
                     f"{r['statuses']} | {'exactly' if r['recorded_exactly'] else 'NO'} |")
    lines += ["", f"Install: `.[edge]` closure {closure['edge_mb']} MB "
              f"({closure['edge_distributions']} distributions); with `serve` "
              f"{closure['edge_serve_mb']} MB (+{closure['serve_adds_mb']} MB: "
              f"{', '.join(closure['serve_adds'])}).", ""]
    return "\n".join(lines) + "\n"


def _round(port: int, clients: int, uploads: int, images: list[bytes]) -> dict:
    before = _get_json(port, "/api/history?limit=1")["total"]
    counter = iter(range(uploads))
    lock = threading.Lock()
    latencies, statuses, server_ms, queued_ms = [], {}, [], []

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            body, content_type = _multipart(f"bench-{index}.png", images[index % len(images)])
            started = time.perf_counter()
            connection.request("POST", "/api/classify", body, {"Content-Type": content_type})
            response = connection.getresponse()
            payload = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 200:
                    result = json.loads(payload)["results"][0]
                    server_ms.append(result["latency_ms"])
                    queued_ms.append(result["queued_ms"])
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    after = _get_json(port, "/api/history?limit=1")["total"]
    return {
        "clients": clients, "uploads": uploads, "wall_s": round(wall, 2),
        "images_per_s": round(uploads / wall, 1),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 1),
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1),
        "latency_ms_max": round(max(latencies), 1),
        "server_latency_ms_median": round(statistics.median(server_ms), 1) if server_ms else None,
        "queued_ms_p95": round(float(np.percentile(queued_ms, 95)), 1) if queued_ms else None,
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "recorded": after - before,
        "recorded_exactly": after - before == uploads == statuses.get(200, 0),
    }


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _get_json(port: int, path: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.read()[:300]!r}")
        return json.loads(response.read())
    finally:
        connection.close()


def _wait_until_up(port: int, server: subprocess.Popen, work: str) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < STARTUP_TIMEOUT_S:
        if server.poll() is not None:
            with open(os.path.join(work, "serve.log")) as log:
                tail = log.read()[-2000:]
            raise RuntimeError(f"cxr-edge serve exited {server.returncode}: {tail}")
        try:
            _get_json(port, "/api/health")
            return time.perf_counter() - started
        except (OSError, RuntimeError):
            time.sleep(0.1)
    raise RuntimeError(f"cxr-edge serve did not answer within {STARTUP_TIMEOUT_S} s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model dir, serving dir or .tflite")
    parser.add_argument("--edge-python", help="server interpreter (default .venv-edge)")
    parser.add_argument("--clients", default=",".join(map(str, DEFAULT_CLIENTS)))
    parser.add_argument("--requests", type=int, default=100, help="uploads per round (>= N)")
    parser.add_argument("--image-px", type=int, default=1024)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    python, _ = edge_python(args.edge_python)
    clients = tuple(int(n) for n in args.clients.split(",") if n.strip())
    result = measure(python, os.path.abspath(args.model), clients, args.requests, args.image_px)
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    print(text)
    print(render_markdown({"serve": result}), file=sys.stderr)
    return 0 if all(r["recorded_exactly"] for r in result["rounds"]) else 1


if __name__ == "__main__":
    sys.exit(main())
