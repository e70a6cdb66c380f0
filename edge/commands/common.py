"""What the subcommands share: exit codes, opening the classifier, the text table."""

from __future__ import annotations

from edge import signing
from edge.classifier import Classifier, ClassifierOptions
from edge.site import calibration as site_calibration
from edge.site.calibration import SiteCalibration

EXIT_OK, EXIT_FILES_FAILED, EXIT_USAGE = 0, 1, 2


def open_classifier(args) -> Classifier:
    options = ClassifierOptions(
        threads=args.threads,
        refer_below=getattr(args, "refer_below", None),
        ood_threshold=getattr(args, "ood_threshold", None),
        trusted_keys=tuple(getattr(args, "trusted_key", None) or signing.trusted_keys_from_env()),
    )
    return Classifier.open(args.model, options)


def open_site_calibration(args, classifier: Classifier) -> SiteCalibration | None:
    """--site-calibration's record, checked against the model; its referral thresholds apply
    where --refer-below / --ood-threshold were not given. CalibrationError if it does not fit."""
    path = getattr(args, "site_calibration", None)
    if not path:
        return None
    calibration = site_calibration.for_model(site_calibration.load(path),
                                             classifier.model_sha256, classifier.class_names)
    classifier.options = site_calibration.referral_options(classifier.options, calibration)
    return calibration


def variant_fields(classifier: Classifier, threads: int | None) -> dict:
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


def table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [str(cell).ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
