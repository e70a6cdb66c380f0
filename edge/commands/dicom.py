"""`cxr-edge dicom-listen`: the DICOM node without the web page (the dicom-net extra).

It runs the same Station as `cxr-edge serve` (queue, history, calibration, outbox) with no HTTP
side, until SIGINT or SIGTERM (systemd's stop); `serve --dicom-port` runs both together.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from edge import signing
from edge.commands.common import EXIT_OK, EXIT_USAGE
from edge.dicom_net import options as dicom_options  # standard library only
from edge.serve import options as serve_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help=f"the station's history (default {serve_options.default_data_dir()})")
    parser.add_argument("--site-calibration", default=None, metavar="SITE_JSON",
                        help="a site calibration to put in force for its model")
    parser.add_argument("--trusted-key", action="append", metavar="PEM",
                        help="refuse a model not signed by this Ed25519 public key")
    dicom_options.add_arguments(parser, short=True)


def dicom_listen_command(args) -> int:
    try:
        node_options = dicom_options.from_arguments(args)
        options = serve_options.ServeOptions(
            model=args.model, data_dir=args.data_dir or str(serve_options.default_data_dir()),
            threads=args.threads, site_calibration=args.site_calibration,
            trusted_keys=tuple(args.trusted_key or signing.trusted_keys_from_env()),
            dicom=node_options)
    except ValueError as err:
        print(f"cxr-edge dicom-listen: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        import edge.dicom_net.service  # noqa: F401  the dicom-net extra, before the model loads
        from edge.serve.station import Station
    except ImportError as err:
        print(f"cxr-edge: dicom-listen needs the dicom-net extra (pip install "
              f"'.[dicom-net]'): {err}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    station = Station(options)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    station.start()
    print(f"cxr-edge dicom-listen: {node_options.ae_title} on {node_options.host}:"
          f"{station.dicom.port}, model {station.slot.current.version}, history in "
          f"{options.data_dir}"
          + (f", results to {node_options.send_to}" if node_options.send_to else ""),
          file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        station.stop()
    return EXIT_OK
