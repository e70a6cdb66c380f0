"""What `cxr-edge serve` is told: its options, its CLI arguments, and the rule for binding.

Standard library only: edge.cli imports this to build its parser without the web stack.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from edge import signing
from edge.dicom_net import options as dicom_options  # standard library only

ACCESS_CODE_ENV = "CXR_ACCESS_CODE"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# A radiograph is a few MB (a 3000x3000 16-bit DICOM is ~18 MB); a batch of them fits in 64 MB.
DEFAULT_MAX_UPLOAD_MB = 64
# Files waiting for or being classified. 64 lets 50 simultaneous one-file uploads all in; each
# waiting file holds its bytes in memory, so this times the upload limit bounds the memory.
DEFAULT_QUEUE_SIZE = 64
# How long a request whose files do not fit waits for room before it gets 503.
DEFAULT_QUEUE_WAIT_S = 30.0
DEFAULT_RELOAD_INTERVAL_S = 2.0
SHORT_CODE = 8  # shorter access codes are accepted with a warning
# A named user's login session ends after this long without a request, and at the latest this
# long after logging in (one clinic shift), whichever comes first.
SESSION_IDLE_S = 30 * 60
SESSION_MAX_S = 12 * 3600
# A wrong password or access code waits this long before its answer: slows guessing, blocks
# nobody else (the wait is asynchronous).
FAILED_LOGIN_DELAY_S = 1.0


class BindRefused(ValueError):
    """A bind the rules forbid (a network address without an access code or named users)."""


@dataclass(frozen=True)
class ServeOptions:
    model: str  # a pushed model dir, the pusher's destination (LATEST), its `latest` link, .tflite
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: str = field(default_factory=lambda: str(default_data_dir()))
    keep_images: bool = False
    access_code: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    queue_size: int = DEFAULT_QUEUE_SIZE
    queue_wait_s: float = DEFAULT_QUEUE_WAIT_S
    reload_interval_s: float = DEFAULT_RELOAD_INTERVAL_S
    threads: int | None = None
    refer_below: float | None = None
    ood_threshold: float | None = None
    trusted_keys: tuple[str, ...] = ()
    site_calibration: str | None = None  # a site.json to put in force for its model at start
    session_idle_s: float = SESSION_IDLE_S
    session_max_s: float = SESSION_MAX_S
    failed_login_delay_s: float = FAILED_LOGIN_DELAY_S
    dicom: object | None = None  # edge.dicom_net.options.DicomOptions: run the DICOM node too

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be within 0..65535, got {self.port}")
        if self.max_upload_bytes < 1024:
            raise ValueError(f"the upload limit must be at least 1 KiB, got "
                             f"{self.max_upload_bytes} bytes")
        if self.queue_size < 1:
            raise ValueError(f"queue size must be at least 1, got {self.queue_size}")
        if self.queue_wait_s < 0:
            raise ValueError(f"queue wait must not be negative, got {self.queue_wait_s}")
        if self.reload_interval_s <= 0:
            raise ValueError(f"reload interval must be positive, got {self.reload_interval_s}")
        if self.access_code is not None and not self.access_code.strip():
            raise ValueError("the access code is empty")
        if self.session_idle_s <= 0 or self.session_max_s <= 0:
            raise ValueError("session lifetimes must be positive")
        if self.failed_login_delay_s < 0:
            raise ValueError("the failed-login delay must not be negative")

    @property
    def local_only(self) -> bool:
        return is_loopback(self.host)


def check_bind(options: ServeOptions) -> list[str]:
    """Raises BindRefused for a network bind with neither an access code nor named users;
    returns warnings.

    Called before anything listens: a refused bind never opens a socket (and creates no file:
    the users are read from an existing database only)."""
    from edge.serve import users  # SQLite only when serving, not for every `cxr-edge` command

    named_users = users.has_users(options.data_dir)
    if not options.local_only and not options.access_code and not named_users:
        raise BindRefused(
            f"refusing to listen on {options.host!r} without an access code or named users: "
            f"anyone on the network could read the history. Give --access-code or set "
            f"${ACCESS_CODE_ENV}, add users (cxr-edge users add NAME --role admin), or bind "
            f"{DEFAULT_HOST} (this machine only)"
        )
    warnings = []
    if options.access_code and named_users:
        warnings.append("this station has named users, so the access code is no longer "
                        "accepted: people log in with their name and password, API clients "
                        "send their token (cxr-edge users token NAME)")
    elif options.access_code and len(options.access_code) < SHORT_CODE:
        warnings.append(f"the access code has fewer than {SHORT_CODE} characters; a longer one "
                        "is harder to guess")
    if not options.local_only:
        warnings.append("passwords, codes and results travel unencrypted (plain HTTP): use a "
                        "network only the clinic controls, or a TLS proxy in front")
    return warnings


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1; a name or 0.0.0.0 counts as the network."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return Path(base) / "cxr-edge"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `serve` subcommand's arguments (besides --model/--threads, which cli.py adds)."""
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}, this machine only; "
                        "any other address needs an access code or named users)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help=f"where the history (SQLite) lives (default {default_data_dir()})")
    parser.add_argument("--keep-images", action="store_true",
                        help="also keep each classified image and its heat map under --data-dir "
                        "(default: only the results are kept)")
    parser.add_argument("--access-code", default=None,
                        help=f"code every request must carry: header X-Access-Code (or "
                        "Authorization: Bearer), or the page's login form (default "
                        f"${ACCESS_CODE_ENV}); required to listen beyond this machine")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                        help="largest request body; bigger uploads get 413")
    parser.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE,
                        help="files waiting for the interpreter; more wait for room")
    parser.add_argument("--queue-wait", type=float, default=DEFAULT_QUEUE_WAIT_S, metavar="S",
                        help="how long an upload waits for room in the queue before 503")
    parser.add_argument("--reload-interval", type=float, default=DEFAULT_RELOAD_INTERVAL_S,
                        metavar="S", help="how often to look for a new push (seconds)")
    parser.add_argument("--refer-below", type=float, default=None, metavar="P",
                        help="override the manifest's low-confidence threshold")
    parser.add_argument("--ood-threshold", type=float, default=None, metavar="S",
                        help="override the manifest's out-of-distribution threshold")
    parser.add_argument("--site-calibration", default=None, metavar="SITE_JSON",
                        help="a site calibration (cxr-edge calibrate) to put in force for its "
                        "model: results of that model get screen positive/negative")
    dicom_options.add_arguments(parser)


def from_args(args, environ=None) -> ServeOptions:
    environ = os.environ if environ is None else environ
    return ServeOptions(
        model=args.model,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir or str(default_data_dir()),
        keep_images=args.keep_images,
        access_code=args.access_code or environ.get(ACCESS_CODE_ENV) or None,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        queue_size=args.queue_size,
        queue_wait_s=args.queue_wait,
        reload_interval_s=args.reload_interval,
        threads=args.threads,
        refer_below=args.refer_below,
        ood_threshold=args.ood_threshold,
        trusted_keys=tuple(args.trusted_key or signing.trusted_keys_from_env(environ)),
        site_calibration=args.site_calibration,
        dicom=dicom_options.from_arguments(args) if args.dicom_port is not None else None,
    )
