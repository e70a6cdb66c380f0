"""The real `cxr-edge serve` command in its own process: it starts, answers, records, stops
cleanly on SIGTERM (systemd's stop); a model that does not verify stops it before it listens."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.edge.serve_helpers import Client, make_model_dir, wait_for, xray_png

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(model: Path, data: Path, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "serve", "--model", str(model), "--port", str(port),
         "--data-dir", str(data), *extra],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def test_the_command_serves_records_and_stops_on_sigterm(tmp_path):
    port = _free_port()
    server = _serve(make_model_dir(tmp_path / "model"), tmp_path / "data", port)
    try:
        client = Client(f"http://127.0.0.1:{port}")

        def up():
            if server.poll() is not None:
                raise AssertionError(f"serve exited {server.returncode}: {server.stderr.read()}")
            try:
                return client.get("/api/health").status == 200
            except OSError:
                return False

        wait_for(up, "cxr-edge serve answers", timeout=30)
        assert client.upload([("a.png", xray_png(1))]).status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM: systemd counts that as a clean stop.
    assert server.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr  # the queue drained, the history closed
    assert "model model (float32" in stderr and f"http://127.0.0.1:{port}/" in stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "history.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1


def test_a_model_that_does_not_verify_stops_the_command(tmp_path):
    model = make_model_dir(tmp_path / "model")
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["sha256"] = "0" * 64
    (model / "manifest.json").write_text(json.dumps(manifest))
    port = _free_port()
    started = time.monotonic()
    server = _serve(model, tmp_path / "data", port)
    _, stderr = server.communicate(timeout=60)
    assert server.returncode == 2 and "does not match its manifest" in stderr
    assert time.monotonic() - started < 60
    with socket.socket() as again:
        assert again.connect_ex(("127.0.0.1", port)) != 0
