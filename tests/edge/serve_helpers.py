"""Shared by the `cxr-edge serve` tests: model dirs, pusher-like pushes, a real server on
loopback and a small stdlib HTTP client (no proxies: the tests talk to 127.0.0.1 only)."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.manifest import write_model_dir
from tests.edge.conftest import radiograph_like
from tests.edge.golden import model_path

pytest.importorskip("starlette", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

from edge.serve.options import ServeOptions
from edge.serve.server import serve_in_thread

ATTENTION_MODEL = model_path("fp32")  # 4 classes + attention_1
GATES = [{"gate": "macro F1", "metric": "macro_f1", "value": 0.93, "threshold": 0.9,
          "comparison": ">=", "passed": True},
         {"gate": "COVID recall", "metric": "priority_recall", "value": 0.95, "threshold": 0.9,
          "comparison": ">=", "passed": True}]
METRICS = {"gates": GATES,
           "evaluator": {"example_count": 200, "accuracy": 0.94, "macro_f1": 0.93,
                         "priority_class": "COVID", "priority_recall": 0.95},
           "variant": {"variant": "float32", "macro_f1": 0.93,
                       "selection_reason": "float32 shipped: the test's pick"}}


def make_model_dir(folder: Path, model: Path = ATTENTION_MODEL, **manifest) -> Path:
    write_model_dir(folder, model, variant=manifest.pop("variant", "float32"),
                    synthetic_data=manifest.pop("synthetic_data", True),
                    metrics=manifest.pop("metrics", METRICS), **manifest)
    return folder


def push(destination: Path, version: str, model: Path = ATTENTION_MODEL, **manifest) -> Path:
    """What components/edge_pusher.py does: versions/<version>/, then LATEST, then `latest`."""
    version_dir = make_model_dir(destination / "versions" / version, model, **manifest)
    (destination / "LATEST.tmp").write_text(version + "\n")
    os.replace(destination / "LATEST.tmp", destination / "LATEST")
    link = destination / "latest"
    os.symlink(os.path.join("versions", version), str(link) + ".tmp")
    os.replace(str(link) + ".tmp", link)
    return version_dir


def png(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG")
    return buffer.getvalue()


def xray_png(seed: int = 0, size: int = 48) -> bytes:
    return png(radiograph_like(size, size, seed=seed))


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class Client:
    """HTTP to the station with the standard library, never through a proxy."""

    def __init__(self, url: str, headers: dict | None = None):
        self.url = url
        self.headers = dict(headers or {})
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                   _NoRedirect())

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None, timeout: float = 30) -> Reply:
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={**self.headers, **(headers or {})})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return Reply(response.status, {k.lower(): v for k, v in response.headers.items()},
                             response.read())
        except urllib.error.HTTPError as err:
            return Reply(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def delete(self, path: str, **kwargs) -> Reply:
        return self.request("DELETE", path, **kwargs)

    def upload(self, files: list[tuple[str, bytes]], upload_ids: list[str] | None = None,
               headers: dict | None = None) -> Reply:
        body, content_type = multipart(files, upload_ids)
        return self.request("POST", "/api/classify", body,
                            {"Content-Type": content_type, **(headers or {})})


def multipart(files: list[tuple[str, bytes]], upload_ids: list[str] | None = None):
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b"\r\n")
    for upload_id in upload_ids or []:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="upload_id"'
                     f"\r\n\r\n{upload_id}\r\n".encode())
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the tests look at the 303 itself


def start(model: Path, data_dir: Path, **options):
    """A station on 127.0.0.1 with a free port; stop it with .stop()."""
    options.setdefault("reload_interval_s", 0.1)
    bind_host = options.pop("bind_host", None)
    return serve_in_thread(ServeOptions(model=str(model), host=options.pop("host", "127.0.0.1"),
                                        port=0, data_dir=str(data_dir), **options),
                           bind_host=bind_host)


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    """Polls condition until it is truthy; fails naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.05)
