"""What the DICOM node is told: AE title, port, who may call, where results go, which checks run.

Standard library only: edge.cli builds its parsers from this without importing pynetdicom.
`cxr-edge serve` takes the options as --dicom-port/--dicom-ae-title/--dicom-allow;
`cxr-edge dicom-listen` takes the same, and also the short --port/--ae-title/--allow.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from dataclasses import dataclass, field

from edge.dicom_net.checks import DEFAULT_MIN_AGE, HeaderChecks

DEFAULT_AE_TITLE = "CXR_EDGE"
DEFAULT_DICOM_PORT = 11112  # DICOM's registered port for non-privileged use
DEFAULT_DICOM_HOST = "0.0.0.0"  # an X-ray unit is another machine; the allow-list guards it
# A PACS that is down is retried after 2, 4, 8 ... s, at most every 5 minutes.
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 300.0
CHECK_NAMES = ("sop_class", "body_part", "view", "age", "presentation")
_AE = re.compile(r"^[\x20-\x7e]{1,16}$")  # DICOM AE: up to 16 printable ASCII characters


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """AE@HOST:PORT, e.g. ORTHANC@10.0.0.5:4242."""
        match = re.match(r"^([^@]{1,16})@(\[[^\]]+\]|[^:@]+):(\d{1,5})$", text.strip())
        if not match or not 0 < int(match.group(3)) <= 65535:
            raise ValueError(f"a destination is AE@HOST:PORT (e.g. PACS@10.0.0.5:104), got "
                             f"{text!r}")
        return cls(_ae_title(match.group(1)), match.group(2).strip("[]"), int(match.group(3)))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Caller:
    """One allow-list entry: an AE title, an address or network, or both (AE@ADDRESS)."""

    ae_title: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @classmethod
    def parse(cls, text: str) -> Caller:
        text = text.strip()
        ae, _, address = text.rpartition("@") if "@" in text else ("", "", text)
        network = _network(address)
        if network is None:  # no address: the whole entry is an AE title
            if ae:
                raise ValueError(f"{address!r} in {text!r} is not an IP address or network")
            return cls(ae_title=_ae_title(text))
        return cls(ae_title=_ae_title(ae) if ae else None, network=network)

    def admits(self, ae_title: str, address: str) -> bool:
        if self.ae_title is not None and self.ae_title != ae_title.strip():
            return False
        if self.network is not None:
            try:
                return ipaddress.ip_address(address) in self.network
            except ValueError:
                return False
        return True


@dataclass(frozen=True)
class DicomOptions:
    port: int = DEFAULT_DICOM_PORT
    ae_title: str = DEFAULT_AE_TITLE
    host: str = DEFAULT_DICOM_HOST
    allow: tuple[Caller, ...] = ()
    allow_any: bool = False  # only with an explicit --dicom-allow-any
    send_to: Destination | None = None
    keep_identifiers: bool = False
    checks: HeaderChecks = field(default_factory=HeaderChecks)
    retry_first_s: float = RETRY_FIRST_S
    retry_max_s: float = RETRY_MAX_S

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise ValueError(f"the DICOM port must be within 0..65535, got {self.port}")
        _ae_title(self.ae_title)
        if not self.allow and not self.allow_any:
            raise ValueError("say who may send images: --dicom-allow AE_TITLE|ADDRESS|AE@ADDRESS"
                             "[,...] (the X-ray unit's or PACS router's calling AE title or "
                             "address), or --dicom-allow-any on a network only the clinic uses")

    def admits(self, ae_title: str, address: str) -> bool:
        return self.allow_any or any(caller.admits(ae_title, address) for caller in self.allow)


def add_arguments(parser: argparse.ArgumentParser, short: bool = False) -> None:
    """The node's flags. short: also --port/--ae-title/--allow (dicom-listen has no web port)."""
    def names(long: str, plain: str) -> list[str]:
        return [long, plain] if short else [long]

    group = parser.add_argument_group("DICOM node")
    group.add_argument(*names("--dicom-port", "--port"), dest="dicom_port", type=int,
                       default=None if not short else DEFAULT_DICOM_PORT,
                       help="listen for DICOM (C-STORE, C-ECHO) on this port"
                            + ("" if short else " (off unless given)"))
    group.add_argument(*names("--dicom-ae-title", "--ae-title"), dest="dicom_ae_title",
                       default=DEFAULT_AE_TITLE, help=f"this node's AE title ({DEFAULT_AE_TITLE})")
    group.add_argument("--dicom-host", default=DEFAULT_DICOM_HOST,
                       help=f"address to listen on ({DEFAULT_DICOM_HOST}: every interface)")
    group.add_argument(*names("--dicom-allow", "--allow"), dest="dicom_allow", default="",
                       help="comma-separated callers allowed to send: calling AE titles, "
                            "addresses or networks (10.0.0.0/24), or AE@ADDRESS")
    group.add_argument("--dicom-allow-any", action="store_true",
                       help="accept every caller (only on a network the clinic alone uses)")
    group.add_argument("--send-to", default=None, metavar="AE@HOST:PORT",
                       help="send each result back as a DICOM SR and a Secondary Capture")
    group.add_argument("--keep-identifiers", action="store_true",
                       help="store PatientID and AccessionNumber as sent (default: keyed hashes)")
    group.add_argument("--min-age", type=float, default=None,
                       help=f"refer patients younger than this, in years (default "
                            f"{DEFAULT_MIN_AGE:g}, or the model manifest's min_patient_age)")
    group.add_argument("--no-check", action="append", default=[], choices=CHECK_NAMES,
                       help="turn one header check off (repeatable)")


def from_arguments(args: argparse.Namespace) -> DicomOptions:
    checks = HeaderChecks(**{name: name not in args.no_check for name in CHECK_NAMES},
                          min_age=args.min_age)
    return DicomOptions(
        port=args.dicom_port, ae_title=args.dicom_ae_title, host=args.dicom_host,
        allow=tuple(Caller.parse(entry) for entry in args.dicom_allow.split(",")
                    if entry.strip()),
        allow_any=args.dicom_allow_any,
        send_to=Destination.parse(args.send_to) if args.send_to else None,
        keep_identifiers=args.keep_identifiers, checks=checks)


def _ae_title(text: str) -> str:
    text = text.strip()
    if not _AE.match(text) or "\\" in text:
        raise ValueError(f"an AE title is 1-16 printable ASCII characters, got {text!r}")
    return text


def _network(text: str):
    try:
        return ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        return None
