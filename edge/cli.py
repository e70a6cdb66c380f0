"""cxr-edge: classify chest X-rays with a TFLite model on any CPU, without TensorFlow.

    cxr-edge classify --model DIR_OR_TFLITE IMAGES_OR_FOLDERS... [--format table|json|csv]
    cxr-edge bench --model M [--threads N] [--runs N] [--warmup N]
    cxr-edge info --model M
    cxr-edge calibrate --model M --findings FINDINGS.csv IMAGES... --target sensitivity=0.90
        [--score abnormal|CLASS] --out site.json   (classify and serve take --site-calibration)
    cxr-edge export-android --model DIR --out FILE [--ood-threshold S] [--refer-below P]
        (needs the android extra; writes FILE and its referral record NAME.referral.json)
    cxr-edge keygen --out DIR | cxr-edge sign --model DIR --key PEM   (the signing extra)
    cxr-edge serve --model DIR [--host H] [--port P] [--data-dir D]   (the serve extra)
        [--dicom-port DP --dicom-ae-title AE --dicom-allow CALLER,... --send-to AE@HOST:PORT]
    cxr-edge dicom-listen --model DIR --port DP --ae-title AE --allow CALLER,... [--send-to ...]
        (the DICOM node alone; the dicom-net extra)
    cxr-edge users add|passwd|role|remove|token|list [NAME] [--role R] [--data-dir D]

classify, bench, info and serve take --trusted-key PEM (or CXR_TRUSTED_KEY): then only a model
directory whose manifest is signed by that key loads.

Records go to stdout (or --out); progress and messages to stderr. Exit codes: 0 every image
classified, 1 at least one image failed, 2 bad usage or a model that was refused.
This module parses the arguments; each subcommand's work is in edge/commands/.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from edge import latency, signing, spec
from edge.commands.bench import bench_command
from edge.commands.calibrate import add_arguments as calibrate_arguments
from edge.commands.calibrate import calibrate_command
from edge.commands.classify import classify_command
from edge.commands.common import EXIT_FILES_FAILED, EXIT_OK, EXIT_USAGE
from edge.commands.dicom import add_arguments as dicom_arguments
from edge.commands.dicom import dicom_listen_command
from edge.commands.extras import export_android_command, serve_command
from edge.commands.info import info_command
from edge.commands.keys import keygen_command, sign_command
from edge.commands.users import add_subcommand as add_users_subcommand
from edge.manifest import ManifestError
from edge.runtime import RuntimeUnavailable
from edge.serve import options as serve_options  # standard library only; the web stack is not

__all__ = ["EXIT_FILES_FAILED", "EXIT_OK", "EXIT_USAGE", "main"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with _debug_log(getattr(args, "debug", False)):
            return args.command(args)
    except (ManifestError, RuntimeUnavailable, ValueError) as err:
        print(f"cxr-edge: {err}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxr-edge", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="name", required=True)

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--model", required=True, help="pushed model directory or .tflite")
        sub.add_argument("--threads", type=int, default=None, help="interpreter threads")
        sub.set_defaults(command=handler)
        return sub

    classify = add("classify", classify_command, "classify images and folders of images")
    classify.add_argument("inputs", nargs="+", metavar="IMAGES_OR_FOLDERS")
    classify.add_argument("--format", choices=("table", "json", "csv"), default="table")
    classify.add_argument("--out", help="write the records here instead of stdout")
    classify.add_argument("--heatmaps", metavar="DIR", help="write attention overlays (PNG)")
    classify.add_argument(
        "--refer-below",
        type=float,
        default=None,
        metavar="P",
        help="status 'refer' (low_confidence) when the top probability is under P; default: "
        "the manifest's threshold, chosen on eval for a target accuracy",
    )
    classify.add_argument(
        "--ood-threshold",
        type=float,
        default=None,
        metavar="S",
        help="status 'refer' (out_of_distribution) when the model's OOD score is above S; "
        f"default: the manifest's ({spec.DEFAULT_OOD_THRESHOLD}, the cut chosen on eval)",
    )
    classify.add_argument(
        "--site-calibration", metavar="SITE_JSON", default=None,
        help="a site calibration (cxr-edge calibrate, or the station's Site page): each record "
        "gets screen positive/negative at the site's threshold; refused for another model",
    )
    classify.add_argument("--progress", choices=("auto", "always", "never"), default="auto")
    classify.add_argument(
        "--debug", action="store_true", help="log the traceback of each failed file to stderr"
    )

    bench = add("bench", bench_command, "measure cold start, latency, throughput, memory")
    bench.add_argument("--runs", type=int, default=50, help="timed runs (50)")
    bench.add_argument("--warmup", type=int, default=latency.WARMUP,
                       help=f"untimed runs after the first, before timing ({latency.WARMUP})")
    bench.add_argument("--image", help="benchmark on this image (default: a synthetic one)")
    bench.add_argument("--out", help="also write the JSON here")

    calibrate = add("calibrate", calibrate_command,
                    "fit the site's screening threshold on its confirmed cases (site.json)")
    calibrate_arguments(calibrate)

    info = add("info", info_command, "show interpreter, tensors, classes and manifest metrics")
    info.add_argument("--format", choices=("table", "json"), default="table")
    serve = add("serve", serve_command,
                "the clinic's web page and JSON API over this classifier (serve extra)")
    serve_options.add_arguments(serve)
    dicom_listen = add("dicom-listen", dicom_listen_command,
                       "a DICOM node: receive images (C-STORE), classify, answer the PACS "
                       "(dicom-net extra)")
    dicom_arguments(dicom_listen)
    for sub in (classify, bench, info, serve):
        sub.add_argument(
            "--trusted-key",
            action="append",
            metavar="PEM",
            help=f"refuse a model not signed by this Ed25519 public key (repeat to trust several "
            f"during a key rotation; default ${signing.TRUSTED_KEY_ENV})",
        )

    add_users_subcommand(commands)  # the serve station's named users

    keygen = commands.add_parser(
        "keygen", help="write a new Ed25519 key pair for signing pushed models (signing extra)"
    )
    keygen.add_argument("--out", required=True, metavar="DIR", help="where the two PEM files go")
    keygen.set_defaults(command=keygen_command)
    sign = commands.add_parser(
        "sign", help="sign a pushed model directory's manifest (signing extra)"
    )
    sign.add_argument("--model", required=True, help="pushed model directory")
    sign.add_argument("--key", help=f"private key (PEM); default ${signing.SIGNING_KEY_ENV}")
    sign.set_defaults(command=sign_command)

    android = add(
        "export-android",
        export_android_command,
        "write a copy with TFLite metadata for Android's ImageClassifier (android extra)",
    )
    android.add_argument(
        "--out", required=True,
        help="the .tflite file to write; its referral record goes next to it "
        "(NAME.referral.json)",
    )
    android.add_argument(
        "--ood-threshold", type=float, default=None, metavar="S",
        help="baked into the model: the referral category when the OOD score is above S; "
        f"default: the manifest's ({spec.DEFAULT_OOD_THRESHOLD})",
    )
    android.add_argument(
        "--refer-below", type=float, default=None, metavar="P",
        help="the app's low-confidence threshold, written to the referral record; "
        "default: the manifest's referral threshold",
    )
    android.add_argument(
        "--site-calibration", metavar="SITE_JSON", default=None,
        help="write the site's screening rule (and its local referral thresholds) into the "
        "referral record; refused for another model",
    )
    return parser


@contextlib.contextmanager
def _debug_log(enabled: bool):
    """With --debug, the edge modules' DEBUG records (failed files' tracebacks) go to stderr."""
    if not enabled:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cxr-edge %(levelname)s %(name)s: %(message)s"))
    edge_logger = logging.getLogger("edge")
    previous_level = edge_logger.level
    edge_logger.addHandler(handler)
    edge_logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        edge_logger.removeHandler(handler)
        edge_logger.setLevel(previous_level)


if __name__ == "__main__":
    sys.exit(main())
