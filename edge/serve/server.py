"""`cxr-edge serve`: check the bind, verify the model, open the history, then run uvicorn.

Everything that can refuse (a network address without an access code, a model that does not
verify) refuses before a socket is opened.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from dataclasses import dataclass

import uvicorn

from edge.serve.app import create_app
from edge.serve.options import ServeOptions, check_bind
from edge.serve.station import Station

# Connections uvicorn accepts at once beyond the queue (pages, history); more get its 503.
EXTRA_CONNECTIONS = 64


def serve(options: ServeOptions) -> int:
    """Runs until SIGINT/SIGTERM (systemd's stop); BindRefused/ManifestError before listening."""
    for warning in check_bind(options):
        print(f"cxr-edge serve: warning: {warning}", file=sys.stderr)
    station = Station(options)
    model = station.slot.current
    print(f"cxr-edge serve: model {model.version} ({model.info.get('variant')}, "
          f"{model.classifier.runtime}), history in {options.data_dir}"
          f"{', images kept' if options.keep_images else ''}; "
          f"http://{_url_host(options.host)}:{options.port}/"
          f"{' (access code required)' if options.access_code else ''}", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.Server(_config(station, options.host, options.port)).run()
    return 0


@dataclass
class Running:
    """A station serving in a background thread (tests, the benchmark)."""

    url: str
    station: Station
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def serve_in_thread(options: ServeOptions, bind_host: str | None = None) -> Running:
    """Starts a station on options.host (or bind_host) with an OS-chosen port if port is 0.

    bind_host lets a test listen on a loopback address while the station is configured as
    if it faced the network (options.host), so the access-code rules apply without exposure."""
    check_bind(options)
    station = Station(options)
    sock = socket.socket(socket.AF_INET6 if ":" in (bind_host or options.host) else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(((bind_host or options.host).strip("[]"), options.port))
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(_config(station, host, port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="cxr-serve-http", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server thread stopped before it started listening")
        thread.join(0.02)
    return Running(f"http://{_url_host(host)}:{port}", station, server, thread)


def _config(station: Station, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        create_app(station),
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,  # no proxy is trusted to name the client
        limit_concurrency=station.options.queue_size + EXTRA_CONNECTIONS,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
