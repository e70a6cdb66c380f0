"""ImageExampleGen executor: a Beam pipeline from a class-folder tree to split tf.Examples.

    list files → decode (edge.imageio) → rejected files → quarantine.jsonl
                                       → group by content hash → labels conflict → quarantine
                                                               → stratified split per class
                                                               → Split-<name>/*.gz in a seeded
                                                                 order (write.py), index.jsonl
Afterwards, plain Python turns the small JSON-lines files into the quarantine report and the
ingest summary, and fails the component when too many files were quarantined.
"""

import collections
import csv
import io
import json
import os

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.image_example_gen import ingest, write
from components.lib import storage
from edge import imageio, spec

EXAMPLES_KEY = "examples"
QUARANTINE_KEY = "quarantine_report"
SUMMARY_KEY = "ingest_summary"

INPUT_BASE = "input_base"
CLASS_NAMES = "class_names"  # JSON list; empty: the class folders found, sorted
SPLIT_RATIOS = "split_ratios"  # JSON [[name, weight], ...]; empty: 70/15/15 train/eval/test
SEED = "seed"
MAX_SIDE = "max_side"  # cap on the stored image's longer side; 0 keeps the original size
MAX_PIXELS = "max_pixels"  # decompression-bomb guard passed to the decoder
MAX_QUARANTINE_FRACTION = "max_quarantine_fraction"
INPUT_FINGERPRINT = "input_fingerprint"  # only there so a changed tree misses the cache
CODE_FINGERPRINT = "code_fingerprint"  # only there so changed code misses the cache
# Where a failed quarantine check leaves its report (<dir>/<run id>/quarantine.{json,csv}):
# TFX discards a failed execution's outputs, so the evidence must live outside them.
EVIDENCE_DIR = "quarantine_evidence_dir"

SUMMARY_FILE = "summary.json"
INDEX_FILE = "index.jsonl"
QUARANTINE_JSON = "quarantine.json"
QUARANTINE_CSV = "quarantine.csv"
QUARANTINE_LINES = "quarantine.jsonl"
CLASS_NAMES_PROPERTY = "class_names"  # custom property on the Examples artifact (JSON list)

DEFAULT_MAX_QUARANTINE_FRACTION = 0.05
FILES_NAMED_IN_ERROR = 10


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads `<Class>/images/*` or `<Class>/*` trees; writes Examples and two reports."""

    def Do(self, input_dict, output_dict, exec_properties):
        self._log_startup(input_dict, output_dict, exec_properties)
        config = _Config.from_properties(exec_properties)
        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        quarantine = artifact_utils.get_single_instance(output_dict[QUARANTINE_KEY])
        summary_artifact = artifact_utils.get_single_instance(output_dict[SUMMARY_KEY])

        class_names, ignored = ingest.resolve_class_names(config.input_base, config.class_names)
        files = ingest.list_class_files(config.input_base, class_names)
        if not files:
            raise ValueError(f"no files under the class folders {class_names} of "
                             f"{config.input_base!r}")
        logging.info("ImageExampleGen: %d files in %d classes", len(files), len(class_names))

        split_names = [name for name, _ in config.split_ratios]
        examples.split_names = artifact_utils.encode_split_names(split_names)
        total_weight = sum(weight for _, weight in config.split_ratios)
        shards = {name: write.shard_count(len(files) * weight / total_weight)
                  for name, weight in config.split_ratios}
        index_path = os.path.join(summary_artifact.uri, INDEX_FILE)
        lines_path = os.path.join(quarantine.uri, QUARANTINE_LINES)
        with self._make_beam_pipeline() as pipeline:
            splits, index, rejected = (
                pipeline
                | "Files" >> beam.Create(files)
                | "Ingest" >> _IngestImages(config, class_names)
            )
            for name in split_names:
                _ = (
                    splits[name]
                    | f"ToExample[{name}]" >> beam.Map(
                        lambda record: (record["path"], _serialized_example(record)))
                    | f"WriteSplit[{name}]" >> write.WriteSeededSplit(
                        artifact_utils.get_split_uri([examples], name), shards[name],
                        config.seed)
                )
            _ = index | "WriteIndex" >> _WriteJsonLines(index_path)
            _ = rejected | "WriteQuarantine" >> _WriteJsonLines(lines_path)

        for name in split_names:
            write.finish_split(artifact_utils.get_split_uri([examples], name), shards[name])
        examples.span = 0
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, "tfrecords_gzip")
        examples.set_string_custom_property(CLASS_NAMES_PROPERTY, json.dumps(class_names))

        indexed = _read_json_lines(index_path)
        rejected_entries = sorted(_read_json_lines(lines_path), key=lambda e: e["path"])
        report = write_quarantine_report(quarantine.uri, rejected_entries)
        summary = build_summary(config, class_names, ignored, split_names, indexed, report)
        _write_text(os.path.join(summary_artifact.uri, SUMMARY_FILE),
                    json.dumps(summary, indent=2, sort_keys=True))
        for artifact in (quarantine, summary_artifact):
            artifact.set_int_custom_property("quarantined", report["count"])
            artifact.set_int_custom_property("examples", summary["examples"])
        logging.info("ImageExampleGen: %d examples, %d quarantined, %d duplicate groups",
                     summary["examples"], report["count"], summary["duplicates"]["groups"])
        if summary["quarantine_fraction"] > config.max_quarantine_fraction:
            evidence = None
            if exec_properties.get(EVIDENCE_DIR):
                evidence = write_quarantine_evidence(exec_properties[EVIDENCE_DIR],
                                                     self._run_label(), rejected_entries)
            raise QuarantineExceeded(
                quarantine_failure_message(summary, config.max_quarantine_fraction,
                                           rejected_entries, evidence))

    def _run_label(self) -> str:
        """The pipeline run id (or a UTC stamp outside an orchestrator), safe as a folder."""
        run_id = getattr(self._context, "pipeline_run_id", None) if self._context else None
        if not run_id:
            import datetime

            run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)


class QuarantineExceeded(RuntimeError):
    """More files were quarantined than max_quarantine_fraction allows."""


def build_summary(config, class_names, ignored_folders, split_names, indexed, report):
    """Counts per split and class, duplicate groups, and the settings that produced them."""
    counts = {split: dict.fromkeys(class_names, 0) for split in split_names}
    members = collections.defaultdict(list)
    for entry in indexed:
        counts[entry["split"]][entry["label_name"]] += 1
        members[entry["hash"]].append(entry["path"])
    groups = sorted(sorted(paths) for paths in members.values() if len(paths) > 1)
    examples = len(indexed)
    files = examples + report["count"]
    return {
        "input_base": config.input_base,
        "class_names": class_names,
        "missing_class_folders": [
            name for name in class_names
            if not fileio.isdir(os.path.join(config.input_base, name))
        ],
        "ignored_folders": ignored_folders,
        "split_ratios": [[name, weight] for name, weight in config.split_ratios],
        "seed": config.seed,
        "max_side": config.max_side,
        "files": files,
        "examples": examples,
        "counts": counts,
        "class_totals": {
            name: sum(counts[split][name] for split in split_names) for name in class_names
        },
        "quarantined": report["count"],
        "quarantined_by_reason": report["by_reason"],
        "quarantine_fraction": report["count"] / files if files else 0.0,
        "duplicates": {
            "groups": len(groups),
            "extra_copies": sum(len(g) - 1 for g in groups),
            "members": groups,
        },
    }


def write_quarantine_evidence(evidence_root, run_label, entries):
    """The quarantine report under <evidence_root>/<run_label> (any fileio path); its folder."""
    evidence = os.path.join(evidence_root, run_label)
    write_quarantine_report(evidence, entries)
    return evidence


def write_quarantine_report(uri, entries):
    """quarantine.json (count, by_reason, files) and quarantine.csv; returns the JSON dict."""
    by_reason = collections.Counter(entry["reason"] for entry in entries)
    report = {"count": len(entries), "by_reason": dict(sorted(by_reason.items())),
              "files": entries}
    _write_text(os.path.join(uri, QUARANTINE_JSON), json.dumps(report, indent=2))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["path", "reason", "message"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(entries)
    _write_text(os.path.join(uri, QUARANTINE_CSV), buffer.getvalue())
    return report


class _Config:
    def __init__(self, input_base, class_names, split_ratios, seed, max_side, max_pixels,
                 max_quarantine_fraction):
        self.input_base = input_base
        self.class_names = class_names
        self.split_ratios = split_ratios
        self.seed = seed
        self.max_side = max_side
        self.max_pixels = max_pixels
        self.max_quarantine_fraction = max_quarantine_fraction

    @classmethod
    def from_properties(cls, props):
        ratios = json.loads(props.get(SPLIT_RATIOS) or "null") or ingest.DEFAULT_SPLIT_RATIOS
        fraction = props.get(MAX_QUARANTINE_FRACTION)
        return cls(
            input_base=props[INPUT_BASE],
            class_names=json.loads(props.get(CLASS_NAMES) or "null") or None,
            split_ratios=tuple((str(name), float(weight)) for name, weight in ratios),
            seed=int(props.get(SEED) or 0),
            max_side=int(props.get(MAX_SIDE) or 0),
            max_pixels=int(props.get(MAX_PIXELS) or imageio.DEFAULT_MAX_PIXELS),
            max_quarantine_fraction=(DEFAULT_MAX_QUARANTINE_FRACTION if fraction is None
                                     else float(fraction)),
        )


class _IngestImages(beam.PTransform):
    """(path, label) → ({split: records}, index entries, quarantine entries)."""

    def __init__(self, config, class_names):
        super().__init__()
        self._config = config
        self._class_names = class_names

    def expand(self, files):
        config, names = self._config, self._class_names
        decoded = (
            files
            | "Spread" >> beam.Reshuffle()  # decode in parallel, not in listing order
            | "Decode" >> beam.ParDo(
                _Decode(config.input_base, names, config.max_side, config.max_pixels)
            ).with_outputs("quarantine", main="ok")
        )
        grouped = (
            decoded.ok
            | "ByHash" >> beam.Map(lambda record: (record["hash"], record))
            | "GroupByHash" >> beam.GroupByKey()
            | "Conflicts" >> beam.ParDo(_SplitConflicts()).with_outputs("conflict", main="clean")
        )
        split_of = (
            grouped.clean
            | "GroupSize" >> beam.Map(lambda kv: (kv[1][0]["label"], (kv[0], len(kv[1]))))
            | "GroupByClass" >> beam.GroupByKey()
            | "Assign" >> beam.FlatMap(
                lambda kv: ingest.assign_splits(list(kv[1]), config.split_ratios,
                                                config.seed).items())
        )
        assigned = grouped.clean | "Place" >> beam.FlatMap(
            lambda kv, table: [(table[kv[0]], record) for record in kv[1]],
            table=beam.pvalue.AsDict(split_of),
        )
        split_names = [name for name, _ in config.split_ratios]
        partitions = assigned | "BySplit" >> beam.Partition(
            lambda item, _: split_names.index(item[0]), len(split_names))
        splits = {
            name: partitions[i] | f"Record[{name}]" >> beam.Map(lambda item: item[1])
            for i, name in enumerate(split_names)
        }
        index = assigned | "Index" >> beam.Map(_index_entry)
        rejected = (decoded.quarantine, grouped.conflict) | "AllRejected" >> beam.Flatten()
        return splits, index, rejected


class _Decode(beam.DoFn):
    def __init__(self, input_base, class_names, max_side, max_pixels):
        self._args = (input_base, class_names, max_side, max_pixels)

    def process(self, item):
        input_base, class_names, max_side, max_pixels = self._args
        path, label = item
        kind, value = ingest.decode_file(input_base, path, label, class_names, max_side,
                                         max_pixels)
        if kind == "ok":
            yield value
        else:
            yield beam.pvalue.TaggedOutput("quarantine", value)


class _SplitConflicts(beam.DoFn):
    def process(self, item):
        content_hash, records = item
        kind, value = ingest.split_conflicts(content_hash, list(records))
        if kind == "clean":
            yield content_hash, value
        else:
            for entry in value:
                yield beam.pvalue.TaggedOutput("conflict", entry)


class _WriteJsonLines(beam.PTransform):
    """One JSON-lines file (a single shard, so the executor can read it back simply)."""

    def __init__(self, path):
        super().__init__()
        self._path = path

    def expand(self, entries):
        return (
            entries
            | "Json" >> beam.Map(lambda entry: json.dumps(entry, sort_keys=True))
            | "Write" >> beam.io.WriteToText(self._path, shard_name_template="")
        )


def _index_entry(item):
    split, record = item
    return {"split": split, "path": record["path"], "label": record["label"],
            "label_name": record["label_name"], "hash": record["hash"],
            "width": record["width"], "height": record["height"]}


def _serialized_example(record) -> bytes:
    # deterministic: the feature map's keys sorted, so the same record is the same bytes in
    # every worker process (map order otherwise follows each process's insertion history).
    return _to_example(record).SerializeToString(deterministic=True)


def _to_example(record):
    def _bytes(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def _int(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        spec.IMAGE_KEY: _bytes(record["png"]),
        spec.LABEL_KEY: _int(record["label"]),
        spec.LABEL_NAME_KEY: _bytes(record["label_name"].encode("utf-8")),
        spec.SOURCE_PATH_KEY: _bytes(record["path"].encode("utf-8")),
        spec.CONTENT_HASH_KEY: _bytes(record["hash"].encode("ascii")),
        spec.WIDTH_KEY: _int(record["width"]),
        spec.HEIGHT_KEY: _int(record["height"]),
    }))


def quarantine_failure_message(summary, limit, entries, evidence_dir=None) -> str:
    """Numbers, where the full list was written, and the first files with their reasons."""
    where = (f"every quarantined file is listed in {os.path.join(evidence_dir, QUARANTINE_CSV)} "
             f"(and {QUARANTINE_JSON})" if evidence_dir else
             "no evidence folder was configured; the files are listed below")
    shown = entries[:FILES_NAMED_IN_ERROR]
    lines = [f"  {entry['path']}: {entry['reason']} ({entry.get('message', '')})"
             for entry in shown]
    if len(entries) > len(shown):
        lines.append(f"  … and {len(entries) - len(shown)} more")
    return (
        f"ImageExampleGen: quarantined {summary['quarantined']} of {summary['files']} files "
        f"({summary['quarantine_fraction']:.1%}), above max_quarantine_fraction {limit:.1%}; "
        f"reasons {summary['quarantined_by_reason']}; {where}:\n" + "\n".join(lines)
    )


def read_ingest_summary(uri: str | None) -> dict | None:
    """summary.json of an ingest_summary output (examples, files, counts per split and class,
    quarantined, by_reason, duplicates, class_names…), or None when there is none."""
    return storage.read_record(uri, SUMMARY_FILE, ("counts", "examples"))


def read_quarantine_report(uri: str | None) -> dict | None:
    """quarantine.json of a quarantine_report output (count, by_reason, files: path, reason,
    message), or None when there is none."""
    return storage.read_record(uri, QUARANTINE_JSON, ("count", "files"))


def _read_json_lines(path):
    if not fileio.exists(path):
        return []
    with fileio.open(path, "r") as f:
        return [json.loads(line) for line in f.read().splitlines() if line.strip()]


def _write_text(path, text):
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, "w") as f:
        f.write(text)
