"""The site calibration record (site.json): a screening threshold fitted on confirmed cases.

A record is bound to one model file (its sha256): the station and `cxr-edge classify` use it
only with that model, and fall back to the manifest's thresholds for any other. It may also
carry local referral thresholds (OOD, low confidence) fitted on confirmed in-distribution
cases. Every result screened with it carries `screen`, `screen_threshold`, `screen_score` and
`calibration_id`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.site import screening, stats

FORMAT = 1
SCREEN_POSITIVE, SCREEN_NEGATIVE = "positive", "negative"
SCREEN_FIELDS = ("screen", "screen_threshold", "screen_score", "calibration_id")
REQUIRED = ("score", "threshold", "target", "n_positive", "n_negative", "model_sha256")


class CalibrationError(ValueError):
    """A site.json that cannot be used (unreadable, or for another model)."""


@dataclass(frozen=True)
class SiteCalibration:
    score: str  # "abnormal" or a class name
    threshold: float  # screen positive when the score is at least this
    target: dict  # what the admin asked for, e.g. {"sensitivity": 0.9}
    n_positive: int
    n_negative: int
    model_sha256: str
    class_names: tuple[str, ...]
    id: str = ""
    model_version: str | None = None
    positive_classes: tuple[str, ...] = ()
    n_not_assessable: int = 0
    precision: float = screening.DEFAULT_PRECISION
    # The fitted point's estimates on the confirmed cases, with their Wilson intervals.
    estimates: dict = field(default_factory=dict)
    auc: dict | None = None
    # Local referral thresholds (None: the manifest's) and what they were fitted for.
    ood_threshold: float | None = None
    refer_below: float | None = None
    referral_targets: dict = field(default_factory=dict)
    created_at: str = ""
    created_by: str = ""
    format: int = FORMAT

    def score_of(self, probabilities: dict) -> float:
        return screening.screening_score(probabilities, self.score, self.class_names)

    def screen(self, probabilities: dict | None) -> dict:
        """The SCREEN_FIELDS of one result (all None for a result without probabilities)."""
        if not probabilities:
            return dict.fromkeys(SCREEN_FIELDS)
        value = self.score_of(probabilities)
        return {"screen": SCREEN_POSITIVE if value >= self.threshold else SCREEN_NEGATIVE,
                "screen_threshold": round(self.threshold, 6),
                "screen_score": round(value, 6), "calibration_id": self.id}

    def applies_to(self, model_sha256: str | None) -> bool:
        return bool(model_sha256) and model_sha256 == self.model_sha256

    def to_json(self) -> dict:
        record = asdict(self)
        record["class_names"] = list(self.class_names)
        record["positive_classes"] = list(self.positive_classes)
        return record


def no_screen() -> dict:
    return dict.fromkeys(SCREEN_FIELDS)


def fit(cases: list[dict], class_names, score: str, target: dict, model_sha256: str,
        model_version: str | None = None, created_by: str = "",
        precision: float = screening.DEFAULT_PRECISION,
        referral_targets: dict | None = None) -> SiteCalibration:
    """A calibration on confirmed cases: dicts with "probabilities" (name -> p) and "label".

    Cases labelled not_assessable (or without probabilities) are counted and left out.
    Raises CalibrationRefused (too few cases, target out of reach) or ValueError (bad input)."""
    class_names = tuple(class_names)
    screening.check_score(score, class_names)
    target = screening.check_target(target)
    usable, not_assessable = split_cases(cases, class_names)
    scores, positives = screening.scores_and_positives(usable, score, class_names)
    threshold = screening.operating_point(scores, positives, target, precision)
    counts = screening.counts_at(scores, positives, threshold)
    row = counts.row(threshold)
    interval = stats.bootstrap_auc_interval(scores, positives)
    area = stats.auc(scores, positives)
    local = fit_referral(usable, class_names, referral_targets or {})
    return SiteCalibration(
        score=score, threshold=float(threshold), target=target,
        n_positive=int(positives.sum()), n_negative=int((~positives).sum()),
        model_sha256=model_sha256, class_names=class_names, id=new_id(),
        model_version=model_version,
        positive_classes=tuple(screening.positive_classes(score, class_names)),
        n_not_assessable=not_assessable, precision=precision,
        estimates={key: row[key] for key in ("sensitivity", "specificity", "ppv", "npv")}
        | {"referred_share": row["referred_share"], "tp": counts.tp, "fp": counts.fp,
           "tn": counts.tn, "fn": counts.fn},
        auc=None if area is None else {"value": round(area, 4), "ci": None if interval is None
                                       else [round(interval[0], 4), round(interval[1], 4)]},
        ood_threshold=local.get("ood_threshold"), refer_below=local.get("refer_below"),
        referral_targets=local.get("targets", {}),
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        created_by=created_by)


def split_cases(cases: list[dict], class_names) -> tuple[list[dict], int]:
    """(cases with a model class as label and probabilities, how many were not assessable)."""
    usable, not_assessable = [], 0
    for case in cases:
        label = case.get("label")
        if label == screening.NOT_ASSESSABLE or not case.get("probabilities"):
            not_assessable += 1
        elif label in class_names:
            usable.append(case)
        else:
            raise ValueError(f"finding {label!r} is not one of the model's classes "
                             f"{list(class_names)} or {screening.NOT_ASSESSABLE!r}")
    return usable, not_assessable


def fit_referral(cases: list[dict], class_names, targets: dict) -> dict:
    """Local referral thresholds on confirmed in-distribution cases.

    targets: {"ood_acceptance": a} keeps a share a of these cases below the OOD threshold;
    {"accuracy": q} is the lowest top-probability cut above which accuracy is at least q."""
    fitted: dict = {"targets": {}}
    if "ood_acceptance" in targets:
        share = float(targets["ood_acceptance"])
        ood = np.array([c["ood_score"] for c in cases if c.get("ood_score") is not None], float)
        if ood.size < screening.MIN_OTHER_GROUP:
            raise screening.CalibrationRefused(
                f"an OOD threshold needs at least {screening.MIN_OTHER_GROUP} confirmed cases "
                f"with an OOD score, got {ood.size}")
        fitted["ood_threshold"] = float(np.quantile(ood, share, method="higher"))
        fitted["targets"]["ood_acceptance"] = share
    if "accuracy" in targets:
        wanted = float(targets["accuracy"])
        top = np.array([max(c["probabilities"].values()) for c in cases], float)
        right = np.array([screening.top_class(c["probabilities"]) == c["label"]
                          for c in cases], bool)
        cut = next((float(t) for t in np.unique(top)
                    if right[top >= t].mean() >= wanted), None)
        if cut is None:
            raise screening.CalibrationRefused(f"no confidence cut reaches accuracy {wanted} "
                                               f"on these {len(cases)} confirmed cases")
        fitted["refer_below"] = cut
        fitted["targets"]["accuracy"] = wanted
    return fitted


def new_id() -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"cal-{stamp}-{secrets.token_hex(3)}"


def save(calibration: SiteCalibration, path: str | os.PathLike) -> None:
    """Written whole or not at all (temporary file, then rename)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(calibration.to_json(), indent=2) + "\n")
    os.replace(temporary, path)


def load(path: str | os.PathLike) -> SiteCalibration:
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise CalibrationError(f"cannot read the site calibration {path}: {err}") from err
    return from_json(record, source=str(path))


def from_json(record: dict, source: str = "the site calibration") -> SiteCalibration:
    if not isinstance(record, dict):
        raise CalibrationError(f"{source} is not a JSON object")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise CalibrationError(f"{source} lacks {missing}")
    if record.get("format", FORMAT) > FORMAT:
        raise CalibrationError(f"{source} has format {record['format']}; this cxr-edge reads "
                               f"up to {FORMAT}")
    known = set(SiteCalibration.__dataclass_fields__)
    values = {key: value for key, value in record.items() if key in known}
    values["class_names"] = tuple(values.get("class_names") or ())
    values["positive_classes"] = tuple(values.get("positive_classes") or ())
    calibration = SiteCalibration(**values)
    if calibration.class_names:
        screening.check_score(calibration.score, calibration.class_names)
    return calibration


def for_model(calibration: SiteCalibration, model_sha256: str, class_names) -> SiteCalibration:
    """The calibration if it was fitted for this model file; CalibrationError otherwise."""
    if not calibration.applies_to(model_sha256):
        raise CalibrationError(
            f"the site calibration {calibration.id or ''} was fitted for model sha256 "
            f"{calibration.model_sha256[:12]}..., not this one ({model_sha256[:12]}...): "
            "recalibrate on confirmed cases for this model version")
    if calibration.class_names and tuple(calibration.class_names) != tuple(class_names):
        raise CalibrationError(f"the site calibration's classes {list(calibration.class_names)}"
                               f" differ from the model's {list(class_names)}")
    if not calibration.class_names:
        calibration = SiteCalibration(**{**calibration.__dict__,
                                         "class_names": tuple(class_names)})
    screening.check_score(calibration.score, calibration.class_names)
    return calibration


def referral_options(options, calibration: SiteCalibration | None):
    """ClassifierOptions with the site's referral thresholds where the user gave none."""
    if calibration is None:
        return options
    return dataclasses.replace(
        options,
        refer_below=options.refer_below if options.refer_below is not None
        else calibration.refer_below,
        ood_threshold=options.ood_threshold if options.ood_threshold is not None
        else calibration.ood_threshold)
