"""ImageValidator: a TFX component that stops the pipeline when the image data are unfit.

StatisticsGen/SchemaGen/ExampleValidator see features; this component sees images and splits.
It reads every example of every split (decoding the stored PNG) and the ingest summary, and
fails, naming the check and its numbers, when

- class_missing: an expected class has no example in some split;
- class_below_minimum: a class has fewer than `min_per_class` examples in all;
- unexpected_class: an example's label is not one of the expected classes (or its index and
  name disagree);
- proportion_drift: a class's share in a non-train split differs from its train share by more
  than `max_proportion_drift`;
- decode_failures: any stored image does not decode (it decoded at ingestion, so the
  Examples are damaged), or files quarantined at ingestion exceed
  `max_decode_failure_fraction` of all files;
- channels / image_size: a stored image has another channel count, or a side outside
  [`min_side`, `max_side`];
- content_hash_leakage: the same content hash appears in two splits.

findings.json is written either way (on failure before raising), so a failed run still
leaves the numbers behind.
"""

import collections
import io
import json
import os

from absl import logging
from PIL import Image
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.image_example_gen import executor as example_gen_executor
from components.lib import artifact_types, storage
from components.lib.code_fingerprint import module_fingerprint
from edge import spec
from trainer import split_reader
from trainer.split_reader import first_value

EXAMPLES_KEY = "examples"
SUMMARY_KEY = "ingest_summary"
FINDINGS_KEY = "findings"
FINDINGS_FILE = "findings.json"

CLASS_NAMES = "class_names"  # JSON list; empty: the order the Examples artifact carries
MIN_PER_CLASS = "min_per_class"
MAX_PROPORTION_DRIFT = "max_proportion_drift"
MAX_DECODE_FAILURE_FRACTION = "max_decode_failure_fraction"
CHANNELS = "channels"
MIN_SIDE = "min_side"
MAX_SIDE = "max_side"

DEFAULTS = {
    MIN_PER_CLASS: 1,
    MAX_PROPORTION_DRIFT: 0.1,
    MAX_DECODE_FAILURE_FRACTION: 0.05,
    CHANNELS: 1,
    MIN_SIDE: 16,
    MAX_SIDE: 4096,
}
TRAIN_SPLIT = "train"
_EXAMPLES_LISTED = 5  # offending paths quoted per check


class ImageValidationError(RuntimeError):
    """Raised when at least one check fails; the message names each failed check."""


class ImageValidatorSpec(ComponentSpec):
    PARAMETERS = {
        CLASS_NAMES: ExecutionParameter(type=str, optional=True),
        MIN_PER_CLASS: ExecutionParameter(type=int, optional=True),
        MAX_PROPORTION_DRIFT: ExecutionParameter(type=float, optional=True),
        MAX_DECODE_FAILURE_FRACTION: ExecutionParameter(type=float, optional=True),
        CHANNELS: ExecutionParameter(type=int, optional=True),
        MIN_SIDE: ExecutionParameter(type=int, optional=True),
        MAX_SIDE: ExecutionParameter(type=int, optional=True),
        "code_fingerprint": ExecutionParameter(type=str, optional=True),  # code_fingerprint.py
    }
    INPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        SUMMARY_KEY: ChannelParameter(type=artifact_types.IngestSummary, optional=True),
    }
    OUTPUTS = {
        FINDINGS_KEY: ChannelParameter(type=artifact_types.ImageValidationFindings),
    }


class Executor(base_executor.BaseExecutor):
    """Collects per-split image facts, runs the checks, writes findings, raises on failure."""

    def Do(self, input_dict, output_dict, exec_properties):
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY])
        summary = None
        if input_dict.get(SUMMARY_KEY):
            summary_uri = artifact_utils.get_single_instance(input_dict[SUMMARY_KEY]).uri
            summary = _read_json(os.path.join(summary_uri, example_gen_executor.SUMMARY_FILE))
        config = dict(DEFAULTS)
        config.update({k: v for k, v in exec_properties.items() if k in DEFAULTS and v is not None})
        class_names = _expected_class_names(exec_properties, examples, summary)

        stats = {}
        for split in artifact_utils.decode_split_names(examples.split_names):
            stats[split] = collect_split_stats(split_reader.records(examples.uri, split), config)
        findings = run_checks(stats, class_names, summary, config)

        findings_artifact = artifact_utils.get_single_instance(output_dict[FINDINGS_KEY])
        path = os.path.join(findings_artifact.uri, FINDINGS_FILE)
        fileio.makedirs(findings_artifact.uri)
        with fileio.open(path, "w") as f:
            f.write(json.dumps(findings, indent=2, sort_keys=True))
        findings_artifact.set_int_custom_property("passed", int(findings["passed"]))
        failed = [check for check in findings["checks"] if not check["passed"]]
        if failed:
            raise ImageValidationError(
                "image validation failed: "
                + "; ".join(f"[{c['name']}] {c['message']}" for c in failed)
                + f" (findings: {path})")
        logging.info("ImageValidator: all %d checks passed", len(findings["checks"]))


class ImageValidator(base_component.BaseComponent):
    """Fails the run when classes, splits or images are unfit (see the module docstring)."""

    SPEC_CLASS = ImageValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples, ingest_summary=None, class_names=None, min_per_class=None,
                 max_proportion_drift=None, max_decode_failure_fraction=None, channels=None,
                 min_side=None, max_side=None):
        super().__init__(spec=ImageValidatorSpec(
            examples=examples,
            ingest_summary=ingest_summary,
            class_names=json.dumps(list(class_names)) if class_names else None,
            min_per_class=min_per_class,
            max_proportion_drift=max_proportion_drift,
            max_decode_failure_fraction=max_decode_failure_fraction,
            channels=channels,
            min_side=min_side,
            max_side=max_side,
            code_fingerprint=module_fingerprint(__name__),
            findings=types.Channel(type=artifact_types.ImageValidationFindings),
        ))


def collect_split_stats(examples, config):
    """One split's label counts, hashes and image faults, from its examples' feature maps
    (trainer.split_reader.records)."""
    stats = {"examples": 0, "counts": collections.Counter(), "labels": set(),
             "hashes": {}, "decode_failures": [], "channel_violations": [],
             "size_violations": []}
    for features in examples:
        path = first_value(features, spec.SOURCE_PATH_KEY, b"?").decode("utf-8", "replace")
        name = first_value(features, spec.LABEL_NAME_KEY, b"").decode("utf-8", "replace")
        stats["examples"] += 1
        stats["counts"][name] += 1
        stats["labels"].add((int(first_value(features, spec.LABEL_KEY, -1)), name))
        stats["hashes"].setdefault(first_value(features, spec.CONTENT_HASH_KEY, b"").decode(), path)
        try:
            with Image.open(io.BytesIO(first_value(features, spec.IMAGE_KEY, b""))) as image:
                image.load()
                channels, (width, height) = len(image.getbands()), image.size
        except Exception as err:  # any decoder error is the finding itself
            stats["decode_failures"].append(f"{path}: {err}")
            continue
        if channels != config[CHANNELS]:
            stats["channel_violations"].append(f"{path}: {channels} channels")
        if min(width, height) < config[MIN_SIDE] or max(width, height) > config[MAX_SIDE]:
            stats["size_violations"].append(f"{path}: {width}x{height}")
    return stats


def run_checks(stats, class_names, summary, config):
    """Returns {"passed", "checks": [{"name", "passed", "message", "numbers"}], "counts"}."""
    checks = [
        _check_classes_present(stats, class_names),
        _check_class_minimum(stats, class_names, config[MIN_PER_CLASS]),
        _check_unexpected_classes(stats, class_names),
        _check_proportion_drift(stats, class_names, config[MAX_PROPORTION_DRIFT]),
        _check_decode_failures(stats, summary, config[MAX_DECODE_FAILURE_FRACTION]),
        _check_list(stats, "channel_violations", "channels",
                    f"stored images must have {config[CHANNELS]} channel(s)"),
        _check_list(stats, "size_violations", "image_size",
                    f"stored image sides must be in [{config[MIN_SIDE]}, {config[MAX_SIDE]}]"),
        _check_leakage(stats),
    ]
    return {
        "passed": all(check["passed"] for check in checks),
        "class_names": list(class_names),
        "config": config,
        "counts": {split: dict(s["counts"]) for split, s in stats.items()},
        "checks": checks,
    }


def _check_classes_present(stats, class_names):
    missing = [f"{name!r} in {split}" for split, s in stats.items()
               for name in class_names if s["counts"][name] == 0]
    message = (f"{len(missing)} class/split pair(s) without examples: {', '.join(missing)}"
               if missing else "every class has examples in every split")
    return _result("class_missing", not missing, message, {"missing": missing})


def _check_class_minimum(stats, class_names, minimum):
    totals = {name: sum(s["counts"][name] for s in stats.values()) for name in class_names}
    low = {name: n for name, n in totals.items() if n < minimum}
    message = (f"classes below min_per_class {minimum}: {low}" if low
               else f"every class has >= {minimum} examples")
    return _result("class_below_minimum", not low, message,
                   {"totals": totals, "min_per_class": minimum})


def _check_unexpected_classes(stats, class_names):
    bad = sorted({f"{index}:{name}" for s in stats.values() for index, name in s["labels"]
                  if not (0 <= index < len(class_names) and class_names[index] == name)})
    message = (f"labels not matching class names {list(class_names)}: {bad}" if bad
               else "every label index matches its class name")
    return _result("unexpected_class", not bad, message, {"unexpected": bad})


def _check_proportion_drift(stats, class_names, bound):
    if TRAIN_SPLIT not in stats or not stats[TRAIN_SPLIT]["examples"]:
        return _result("proportion_drift", False, "no train split to compare against", {})
    reference = _shares(stats[TRAIN_SPLIT], class_names)
    drift = {}
    for split, s in stats.items():
        if split == TRAIN_SPLIT or not s["examples"]:
            continue
        shares = _shares(s, class_names)
        drift[split] = {name: round(abs(shares[name] - reference[name]), 4)
                        for name in class_names}
    worst = {split: max(d.items(), key=lambda item: item[1]) for split, d in drift.items()}
    over = {split: f"{name} {value:.3f}" for split, (name, value) in worst.items()
            if value > bound}
    message = (f"class share differs from train by more than {bound}: {over}" if over
               else f"class shares within {bound} of train")
    return _result("proportion_drift", not over, message,
                   {"bound": bound, "train_shares": reference, "drift": drift})


def _check_decode_failures(stats, summary, bound):
    stored = [failure for s in stats.values() for failure in s["decode_failures"]]
    quarantined = summary["quarantined"] if summary else 0
    files = summary["files"] if summary else sum(s["examples"] for s in stats.values())
    fraction = (quarantined + len(stored)) / files if files else 1.0
    message = (f"{quarantined} quarantined at ingestion + {len(stored)} stored images not "
               f"decodable = {fraction:.1%} of {files} files (bound {bound:.1%})")
    passed = fraction <= bound and not stored
    return _result("decode_failures", passed, message,
                   {"quarantined": quarantined, "stored_failures": stored[:_EXAMPLES_LISTED],
                    "fraction": fraction, "bound": bound})


def _check_list(stats, key, name, rule):
    offenders = [item for s in stats.values() for item in s[key]]
    message = (f"{len(offenders)} image(s) break the rule ({rule}), e.g. "
               f"{offenders[:_EXAMPLES_LISTED]}" if offenders else rule)
    return _result(name, not offenders, message,
                   {"count": len(offenders), "examples": offenders[:_EXAMPLES_LISTED]})


def _check_leakage(stats):
    where = collections.defaultdict(list)
    for split, s in stats.items():
        for content_hash, path in s["hashes"].items():
            where[content_hash].append(f"{split}:{path}")
    leaked = [paths for paths in where.values() if len(paths) > 1]
    message = (f"{len(leaked)} content hash(es) appear in two or more splits, e.g. "
               f"{leaked[:_EXAMPLES_LISTED]}" if leaked else "no content hash in two splits")
    return _result("content_hash_leakage", not leaked, message,
                   {"count": len(leaked), "examples": leaked[:_EXAMPLES_LISTED]})


def _result(name, passed, message, numbers):
    return {"name": name, "passed": bool(passed), "message": message, "numbers": numbers}


def _shares(split_stats, class_names):
    total = split_stats["examples"]
    return {name: split_stats["counts"][name] / total for name in class_names}


def _expected_class_names(exec_properties, examples, summary):
    configured = exec_properties.get(CLASS_NAMES)
    if configured:
        return json.loads(configured)
    carried = examples.get_string_custom_property(example_gen_executor.CLASS_NAMES_PROPERTY)
    if carried:
        return json.loads(carried)
    if summary:
        return summary["class_names"]
    return list(spec.CLASS_NAMES)


def read_findings(uri: str | None) -> dict | None:
    """findings.json of an ImageValidator output (passed, checks: name, passed, message,
    numbers), or None when there is none."""
    return storage.read_record(uri, FINDINGS_FILE, ("checks",))


def _read_json(path):
    with fileio.open(path, "r") as f:
        return json.load(f)
