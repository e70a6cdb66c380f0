"""cxr-edge: classify chest X-rays with a TFLite model on any CPU, without TensorFlow.

    cxr-edge classify --model DIR_OR_TFLITE IMAGES_OR_FOLDERS... [--format table|json|csv]
    cxr-edge bench --model M [--threads N] [--runs N] [--warmup N]
    cxr-edge info --model M
    cxr-edge export-android --model DIR --out FILE [--ood-threshold S] [--refer-below P]
        (needs the android extra; writes FILE and its referral record NAME.referral.json)
    cxr-edge keygen --out DIR | cxr-edge sign --model DIR --key PEM   (the signing extra)
    cxr-edge serve --model DIR [--host H] [--port P] [--data-dir D]   (the serve extra)

classify, bench, info and serve take --trusted-key PEM (or CXR_TRUSTED_KEY): then only a model
directory whose manifest is signed by that key loads.

Records go to stdout (or --out); progress and messages to stderr. Exit codes: 0 every image
classified, 1 at least one image failed, 2 bad usage or a model that was refused.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

from edge import heatmap, latency, signing, spec
from edge.classifier import STATUS_ERROR, Classifier, ClassifierOptions
from edge.imageio import DICOM_SUFFIXES
from edge.manifest import ManifestError, load_model_dir
from edge.record import classify_source
from edge.runtime import RuntimeUnavailable
from edge.serve import options as serve_options  # standard library only; the web stack is not

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff") + DICOM_SUFFIXES
EXIT_OK, EXIT_FILES_FAILED, EXIT_USAGE = 0, 1, 2
PROGRESS_MIN_FILES = 20  # shorter batches finish before a bar helps

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with _debug_log(getattr(args, "debug", False)):
            return args.command(args)
    except (ManifestError, RuntimeUnavailable, ValueError) as err:
        print(f"cxr-edge: {err}", file=sys.stderr)
        return EXIT_USAGE


# ---------------------------------------------------------------------------- classify


def classify_command(args) -> int:
    classifier = _open(args)
    signer = classifier.model.signed_by
    signed = f", signed by trusted key {signer}" if signer else ""
    print(f"cxr-edge: {classifier.runtime}, model {args.model}{signed}", file=sys.stderr)
    files = list(iter_inputs(args.inputs))
    if args.heatmaps:
        if classifier.has_attention:
            Path(args.heatmaps).mkdir(parents=True, exist_ok=True)
        else:
            print("cxr-edge: the model has no attention outputs; no heatmaps", file=sys.stderr)
    progress = _Progress(len(files), args.progress)
    records = []
    heatmap_names: set[str] = set()
    for path in files:
        records.append(classify_file(classifier, path, args.heatmaps, heatmap_names))
        progress.step(path)
    progress.done()
    text = format_records(records, classifier.class_names, args.format)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    failed = sum(record["status"] == STATUS_ERROR for record in records)
    print(f"cxr-edge: {len(records)} images, {failed} failed", file=sys.stderr)
    return EXIT_FILES_FAILED if failed else EXIT_OK


def classify_file(
    classifier: Classifier, path: Path, heatmap_dir: str | None, used_names: set[str]
) -> dict:
    """One record per file, whatever happens to it."""
    started = time.perf_counter()
    outcome = classify_source(classifier, path)
    if outcome.failure is not None:  # --debug shows the traceback
        log.debug("%s: inference failed", path, exc_info=outcome.failure)
    record = {"path": str(path)} | outcome.record
    prediction = outcome.prediction
    if prediction is not None and heatmap_dir and prediction.attention:
        try:
            record["heatmaps"] = _write_heatmaps(
                path, outcome.gray, prediction.attention, heatmap_dir, used_names
            )
        except Exception as err:  # the classification stands; only the overlay is lost
            log.debug("%s: heatmap failed", path, exc_info=True)
            record["heatmap_error"] = f"{type(err).__name__}: {err}"
    record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return record


def iter_inputs(inputs: list[str]):
    """Files as given, folders walked recursively in sorted order.

    Inside folders only image-looking names are taken (plus extensionless DICOM); an entry
    named like an image that is not a regular file (say a directory x.png) is yielded so it
    gets an error record instead of vanishing.
    """
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            yield path
            continue
        for root, dirs, names in os.walk(path):
            dirs.sort()
            root_path = Path(root)
            for name in sorted(names + [d for d in dirs if _is_image_name(d)]):
                if name.startswith("."):
                    continue
                candidate = root_path / name
                if _is_image_name(name) or _is_extensionless_dicom(candidate):
                    yield candidate
            dirs[:] = [d for d in dirs if not _is_image_name(d) and not d.startswith(".")]


def format_records(records: list[dict], class_names, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "csv":
        return _records_csv(records, class_names)
    return _records_table(records, class_names)


def _write_heatmaps(path: Path, gray, attention: dict, heatmap_dir: str, used: set) -> list[str]:
    """DIR/<image stem>.<attention key>.png; same-named images in other folders get _2, _3."""
    stem, counter = path.stem, 1
    while stem in used:
        counter += 1
        stem = f"{path.stem}_{counter}"
    used.add(stem)
    written = []
    for key, values in attention.items():
        out = Path(heatmap_dir) / f"{stem}.{key}.png"
        heatmap.save_overlay(gray, values, out)
        written.append(str(out))
    return written


def _records_csv(records: list[dict], class_names) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["path", "status", "predicted_class", "probability"]
        + [f"p_{name}" for name in class_names]
        + ["ood_score", "latency_ms", "reason", "error"]
    )
    for record in records:
        probabilities = record.get("probabilities") or {}
        writer.writerow(
            [record["path"], record["status"], record.get("predicted_class", ""),
             record.get("probability", "")]
            + [probabilities.get(name, "") for name in class_names]
            + [record.get("ood_score", ""), record["latency_ms"], record.get("reason", ""),
               record.get("error", "")]
        )
    return buffer.getvalue()


def _records_table(records: list[dict], class_names) -> str:
    header = (["path", "status", "class", "p"] + list(class_names)
              + ["ood", "ms", "reason / error"])
    rows = [header]
    for record in records:
        if record["status"] == STATUS_ERROR:
            blanks = ["-"] * (len(class_names) + 2)
            rows.append(
                [record["path"], "error", record["reason"]]
                + blanks
                + [f"{record['latency_ms']:.1f}", record["error"][:80]]
            )
            continue
        probabilities = record["probabilities"]
        rows.append(
            [record["path"], record["status"], record["predicted_class"],
             f"{record['probability']:.3f}"]
            + [f"{probabilities[name]:.3f}" for name in class_names]
            + [f"{record['ood_score']:.2f}" if record["ood_score"] is not None else "-",
               f"{record['latency_ms']:.1f}", record["reason"] or ""]
        )
    return _table(rows)


# ---------------------------------------------------------------------------- bench


def bench_command(args) -> int:
    started = time.perf_counter()
    classifier = _open(args)
    runner = classifier.model.runner
    if args.image:
        model_input = _model_input_for(classifier, args.image)
    else:
        model_input = latency.gradient_input(classifier.input_size)
    runner.run(model_input)
    cold_start_ms = (time.perf_counter() - started) * 1000
    timings = latency.time_runs(runner, model_input, args.warmup, args.runs)
    timed = latency.summarize(timings)
    result = {
        "model": str(args.model),
        "runtime": classifier.runtime,
        **_variant_fields(classifier, args.threads),
        "input_size": classifier.input_size,
        "warmup": args.warmup,
        "runs": timed["runs"],
        "cold_start_ms": round(cold_start_ms, 2),
        "latency_ms_median": timed["median_ms"],
        "latency_ms_p90": timed["p90_ms"],
        "images_per_s": round(1000 * len(timings) / sum(timings), 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    table = _table([["metric", "value"]] + [[key, str(value)] for key, value in result.items()])
    print(table, file=sys.stderr, end="")
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    sys.stdout.write(text)
    return EXIT_OK


def _variant_fields(classifier: Classifier, threads: int | None) -> dict:
    """Variant (the pusher's manifest), quantization (the model's own tensor types), threads."""
    manifest = classifier.model.manifest or {}
    quantization = classifier.model.runner.quantization()
    return {
        "variant": manifest.get("variant"),
        "quantization": quantization["scheme"],
        "quantization_detail": quantization["description"],
        # None: LiteRT chooses (XNNPACK then runs single-threaded); say so rather than "None".
        "threads": threads if threads is not None else "runtime default",
    }


def _model_input_for(classifier: Classifier, image: str):
    from edge.preprocess import to_model_input

    return to_model_input(classifier.load(image), classifier.input_size)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


# ---------------------------------------------------------------------------- info


def info_command(args) -> int:
    classifier = _open(args)
    model = classifier.model
    runner = model.runner
    manifest = model.manifest or {}
    info = {
        "model": str(args.model),
        "model_file": str(runner.model_path),
        "runtime": runner.runtime,
        "signature": runner.signature,
        "verified_manifest": model.manifest is not None,
        "input": runner.input.as_dict(),
        "outputs": [info.as_dict() for info in runner.outputs.values()],
        "class_names": list(model.class_names),
        **_variant_fields(classifier, args.threads),
        "selection": ((manifest.get("metrics") or {}).get("variant") or {}).get(
            "selection_reason"),
        "metrics": manifest.get("metrics", {}),
        "synthetic_data": manifest.get("synthetic_data"),
        "pipeline_run_id": manifest.get("pipeline_run_id"),
        "created_at": manifest.get("created_at"),
    }
    if args.format == "json":
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return EXIT_OK
    rows = [["field", "value"]]
    for key, value in info.items():
        if key == "outputs":
            rows += [[f"output {o['key']}", _describe_tensor(o)] for o in value]
        elif key == "input":
            rows.append(["input " + value["key"], _describe_tensor(value)])
        elif key == "metrics":
            rows += [[f"metric {name}", str(metric)] for name, metric in sorted(value.items())]
        else:
            rows.append([key, ", ".join(value) if isinstance(value, list) else str(value)])
    sys.stdout.write(_table(rows))
    return EXIT_OK


def _describe_tensor(tensor: dict) -> str:
    text = f"{tensor['dtype']} {tensor['shape']}"
    if tensor["quantization"]:
        q = tensor["quantization"]
        text += f" (scale {q['scale']:.6g}, zero point {q['zero_point']})"
    return text


# ---------------------------------------------------------------------------- export-android


def export_android_command(args) -> int:
    # the android extra: imported only here
    from edge.android import export_android, referral_path

    try:
        out = export_android(args.model, args.out, ood_threshold=args.ood_threshold,
                             refer_below=args.refer_below)
    except ImportError as err:
        print(f"cxr-edge: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"cxr-edge: wrote {out} (TFLite metadata for MediaPipe/LiteRT ImageClassifier) and "
          f"{referral_path(out)} (the referral rule and thresholds for the app)",
          file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------- serve


def serve_command(args) -> int:
    try:
        from edge.serve.server import serve  # the serve extra: imported only here
    except ImportError as err:
        print(f"cxr-edge: serve needs the serve extra (pip install '.[serve]'): {err}",
              file=sys.stderr)
        return EXIT_USAGE
    return serve(serve_options.from_args(args))


# ---------------------------------------------------------------------------- keys


def keygen_command(args) -> int:
    private_path, public_path = signing.generate_keypair(args.out)
    key = signing.load_public_key(public_path)
    print(f"cxr-edge: key {signing.key_id(key)}\n"
          f"  private: {private_path}  (the pipeline's ${signing.SIGNING_KEY_ENV}; keep secret)\n"
          f"  public:  {public_path}  (the devices' --trusted-key / ${signing.TRUSTED_KEY_ENV})",
          file=sys.stderr)
    return EXIT_OK


def sign_command(args) -> int:
    key_path = args.key or os.environ.get(signing.SIGNING_KEY_ENV)
    if not key_path:
        print(f"cxr-edge: give --key or set ${signing.SIGNING_KEY_ENV}", file=sys.stderr)
        return EXIT_USAGE
    private_key = signing.load_private_key(key_path)
    model = load_model_dir(args.model)  # never vouch for a directory that does not verify
    if model.manifest is None:
        print(f"cxr-edge: {args.model} is not a model directory with a manifest",
              file=sys.stderr)
        return EXIT_USAGE
    path = signing.sign_manifest(args.model, private_key, spec.MANIFEST_FILENAME)
    print(f"cxr-edge: wrote {path} (key {signing.key_id(private_key)})", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------- shared


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

    info = add("info", info_command, "show interpreter, tensors, classes and manifest metrics")
    info.add_argument("--format", choices=("table", "json"), default="table")
    serve = add("serve", serve_command,
                "the clinic's web page and JSON API over this classifier (serve extra)")
    serve_options.add_arguments(serve)
    for sub in (classify, bench, info, serve):
        sub.add_argument(
            "--trusted-key",
            action="append",
            metavar="PEM",
            help=f"refuse a model not signed by this Ed25519 public key (repeat to trust several "
            f"during a key rotation; default ${signing.TRUSTED_KEY_ENV})",
        )

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
    return parser


def _open(args) -> Classifier:
    options = ClassifierOptions(
        threads=args.threads,
        refer_below=getattr(args, "refer_below", None),
        ood_threshold=getattr(args, "ood_threshold", None),
        trusted_keys=tuple(getattr(args, "trusted_key", None) or signing.trusted_keys_from_env()),
    )
    return Classifier.open(args.model, options)


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


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _is_extensionless_dicom(path: Path) -> bool:
    if path.suffix or not path.is_file():
        return False
    try:
        with open(path, "rb") as stream:
            return stream.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [str(cell).ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


class _Progress:
    """A one-line bar on stderr for long batches; silent when stderr is not a terminal."""

    def __init__(self, total: int, mode: str):
        tty = sys.stderr.isatty()
        self.enabled = mode == "always" or (mode == "auto" and tty and total >= PROGRESS_MIN_FILES)
        self.total, self.count, self.started = total, 0, time.perf_counter()

    def step(self, path: Path) -> None:
        self.count += 1
        if not self.enabled:
            return
        filled = int(30 * self.count / max(self.total, 1))
        rate = self.count / max(time.perf_counter() - self.started, 1e-9)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.count}/{self.total} "
            f"{rate:.1f} img/s {path.name[:30]:<30}"
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


if __name__ == "__main__":
    sys.exit(main())
