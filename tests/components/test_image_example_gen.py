"""ImageExampleGen: planted faults are counted exactly, splits are stratified and leak-free."""

import collections
import csv
import io
import json
import os

import numpy as np
import pytest
from ingest_fixtures import (
    EXPECTED_EXAMPLES,
    EXPECTED_FILES,
    MAX_SIDE,
    PER_CLASS,
    PLANTED_DUPLICATE_GROUP,
    PLANTED_GOOD,
    PLANTED_QUARANTINE,
    example_gen_runner,
    read_examples,
)
from PIL import Image

from components.image_example_gen import executor, ingest, write
from edge import imageio, spec

MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


# ------------------------------------------------------------------ splitting (no Beam)


def test_assign_splits_is_stratified_deterministic_and_keeps_groups_whole():
    groups = [(f"hash{i}", 2 if i % 10 == 0 else 1) for i in range(200)]

    first = ingest.assign_splits(groups, seed=1)
    again = ingest.assign_splits(list(reversed(groups)), seed=1)
    other = ingest.assign_splits(groups, seed=2)

    assert first == again
    assert first != other
    assert set(first) == {h for h, _ in groups}
    files = collections.Counter()
    for content_hash, count in groups:
        files[first[content_hash]] += count
    total = sum(count for _, count in groups)  # 220 files
    assert files == {"train": round(0.7 * total), "eval": 0.15 * total, "test": 0.15 * total}


def test_a_small_class_still_reaches_every_split():
    split_of = ingest.assign_splits([(f"h{i}", 1) for i in range(8)], seed=0)

    assert collections.Counter(split_of.values()) == {"train": 6, "eval": 1, "test": 1}


def test_zero_weight_split_gets_nothing_and_bad_ratios_fail():
    split_of = ingest.assign_splits([(f"h{i}", 1) for i in range(10)],
                                    (("train", 1), ("eval", 0), ("test", 1)))

    assert set(split_of.values()) == {"train", "test"}
    with pytest.raises(ValueError, match="split ratios"):
        ingest.assign_splits([("h", 1)], (("train", 0), ("eval", 0)))


def test_listing_reads_images_folders_ignores_masks_and_hidden_files(tmp_path):
    for name in ("A/images/a1.png", "A/masks/a1.png", "A/images/.DS_Store", "B/b1.png",
                 "B/sub/b2.png", "C/images/c1.png", ".git/config"):
        os.makedirs(tmp_path / os.path.dirname(name), exist_ok=True)
        (tmp_path / name).write_bytes(b"x")

    names, ignored = ingest.resolve_class_names(str(tmp_path), ["B", "A", "D"])
    files = ingest.list_class_files(str(tmp_path), names)

    assert names == ["B", "A", "D"] and ignored == ["C"]
    assert files == [("A/images/a1.png", 1), ("B/b1.png", 0), ("B/sub/b2.png", 0)]
    assert ingest.resolve_class_names(str(tmp_path))[0] == ["A", "B", "C"]


# ------------------------------------------------------------------ the executor, for real


@pytest.fixture(scope="module")
def planted_run(planted_tree, tmp_path_factory):
    return _run_module_scoped(planted_tree, tmp_path_factory, beam_args=())


@pytest.mark.slow
def test_planted_faults_are_quarantined_with_their_reasons(planted_run):
    report = planted_run.quarantine

    assert {e["path"]: e["reason"] for e in report["files"]} == PLANTED_QUARANTINE
    assert report["count"] == len(PLANTED_QUARANTINE)
    assert report["by_reason"] == dict(collections.Counter(PLANTED_QUARANTINE.values()))
    rows = list(csv.DictReader(io.StringIO(_read(planted_run.quarantine_artifact.uri,
                                                  executor.QUARANTINE_CSV))))
    assert {row["path"]: row["reason"] for row in rows} == PLANTED_QUARANTINE
    assert all(row["message"] for row in rows)


@pytest.mark.slow
def test_every_good_file_becomes_one_example_in_exactly_one_split(planted_run, planted_tree):
    by_split = {split: read_examples(planted_run.examples, split) for split in spec.SPLITS}
    paths = [r[spec.SOURCE_PATH_KEY].decode() for rs in by_split.values() for r in rs]

    assert len(paths) == len(set(paths)) == EXPECTED_EXAMPLES
    assert planted_run.summary["files"] == EXPECTED_FILES
    assert set(PLANTED_GOOD) <= set(paths)
    assert not set(PLANTED_QUARANTINE) & set(paths)
    assert not [p for p in paths if "/masks/" in p]
    hashes = {split: {r[spec.CONTENT_HASH_KEY] for r in rs} for split, rs in by_split.items()}
    assert not hashes["train"] & hashes["eval"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["eval"] & hashes["test"]


@pytest.mark.slow
def test_duplicates_are_grouped_into_one_split_and_reported(planted_run):
    duplicates = planted_run.summary["duplicates"]
    index = _index(planted_run)

    assert duplicates == {"groups": 1, "extra_copies": 1, "members": [PLANTED_DUPLICATE_GROUP]}
    assert len({index[p]["split"] for p in PLANTED_DUPLICATE_GROUP}) == 1
    assert len({index[p]["hash"] for p in PLANTED_DUPLICATE_GROUP}) == 1


@pytest.mark.slow
def test_examples_carry_the_spec_features_as_8bit_grayscale_png(planted_run, planted_tree,
                                                                 real_dicom):
    records = {r[spec.SOURCE_PATH_KEY].decode(): r
               for split in spec.SPLITS for r in read_examples(planted_run.examples, split)}
    dicom = records["Viral Pneumonia/images/RG1_UNCR.dcm"]
    stored = Image.open(io.BytesIO(dicom[spec.IMAGE_KEY]))

    assert stored.format == "PNG" and stored.mode == "L"
    assert max(stored.size) == MAX_SIDE  # capped, aspect kept
    assert (dicom[spec.WIDTH_KEY], dicom[spec.HEIGHT_KEY]) == (1841, 1955)  # original size
    assert dicom[spec.LABEL_KEY] == spec.CLASS_NAMES.index("Viral Pneumonia")
    assert dicom[spec.LABEL_NAME_KEY] == b"Viral Pneumonia"
    assert dicom[spec.CONTENT_HASH_KEY].decode() == imageio.content_hash(
        imageio.load_grayscale(real_dicom))
    sixteen = records["Normal/images/sixteen-bit.png"]
    assert Image.open(io.BytesIO(sixteen[spec.IMAGE_KEY])).mode == "L"
    # A 64 px demo image is stored untouched: decoding the example gives the file's pixels.
    covid = records["COVID/images/COVID-3.png"]
    original = np.asarray(Image.open(os.path.join(planted_tree, "COVID/images/COVID-3.png")))
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(covid[spec.IMAGE_KEY]))),
                                  original)


@pytest.mark.slow
def test_artifacts_carry_splits_format_and_class_order(planted_run):
    examples = planted_run.examples
    summary = planted_run.summary

    assert list(examples.splits) == list(spec.SPLITS)
    assert json.loads(examples.get_string_custom_property("class_names")) == list(
        spec.CLASS_NAMES)
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    for split in spec.SPLITS:
        assert os.listdir(os.path.join(examples.uri, f"Split-{split}"))[0].endswith(".gz")
    assert summary["class_names"] == list(spec.CLASS_NAMES)
    assert summary["examples"] == EXPECTED_EXAMPLES
    assert summary["quarantined"] == len(PLANTED_QUARANTINE)
    totals = summary["class_totals"]
    assert totals == {"COVID": PER_CLASS + 1, "Lung_Opacity": PER_CLASS + 1,
                      "Normal": PER_CLASS, "Viral Pneumonia": PER_CLASS + 1}
    for name in spec.CLASS_NAMES:  # stratified: every class in every split
        assert all(summary["counts"][split][name] >= 1 for split in spec.SPLITS)


@pytest.mark.slow
def test_multi_process_beam_gives_the_same_splits(planted_tree, planted_run, tmp_path_factory):
    multi = _run_module_scoped(planted_tree, tmp_path_factory, beam_args=MULTI_PROCESS)

    assert _index(multi) == _index(planted_run)
    assert multi.quarantine == planted_run.quarantine
    # Same records in the same order, byte for byte: the Trainer's seeded shuffle then sees
    # the same stream, so the same data and seed train the same model.
    assert _split_files(multi) == _split_files(planted_run)


@pytest.mark.slow
def test_splits_are_sharded_by_a_seeded_key_and_every_shard_file_exists(
        planted_tree, planted_run, run_example_gen, monkeypatch):
    monkeypatch.setattr(write, "RECORDS_PER_SHARD", 4)
    sharded = run_example_gen(planted_tree, beam_args=MULTI_PROCESS,
                              **{executor.MAX_QUARANTINE_FRACTION: 0.2})
    for split, percent in ingest.DEFAULT_SPLIT_RATIOS:  # 70/15/15
        files = sorted(_split_files(sharded)[split])
        shards = write.shard_count(EXPECTED_FILES * percent / 100)
        assert shards > 1
        assert files == [os.path.basename(write.shard_path("", i, shards)) for i in range(shards)]
        records = read_examples(sharded.examples, split)
        assert sorted(r[spec.SOURCE_PATH_KEY] for r in records) == sorted(
            r[spec.SOURCE_PATH_KEY] for r in read_examples(planted_run.examples, split))
        keys = [ingest.seeded_key(0, r[spec.SOURCE_PATH_KEY].decode()) for r in records]
        by_shard = collections.defaultdict(list)
        for key in keys:
            by_shard[write.shard_of(key, shards)].append(key)
        assert all(group == sorted(group) for group in by_shard.values())


@pytest.mark.slow
def test_too_many_quarantined_files_fail_the_run_with_the_numbers(planted_tree,
                                                                   run_example_gen):
    with pytest.raises(RuntimeError, match=r"quarantined 6 of 41 files .* above "
                                           r"max_quarantine_fraction 10\.0%"):
        run_example_gen(planted_tree, **{executor.MAX_QUARANTINE_FRACTION: 0.1})


@pytest.mark.slow
def test_configured_class_order_is_used_and_missing_class_is_reported(clean_tree,
                                                                      run_example_gen):
    names = ["Normal", "COVID", "Pneumothorax"]

    run = run_example_gen(clean_tree, **{executor.CLASS_NAMES: json.dumps(names)})

    assert run.summary["class_names"] == names
    assert run.summary["missing_class_folders"] == ["Pneumothorax"]
    assert run.summary["ignored_folders"] == ["Lung_Opacity", "Viral Pneumonia"]
    assert run.summary["class_totals"] == {"Normal": PER_CLASS, "COVID": PER_CLASS,
                                           "Pneumothorax": 0}
    labels = {(r[spec.LABEL_NAME_KEY], r[spec.LABEL_KEY])
              for split in spec.SPLITS for r in read_examples(run.examples, split)}
    assert labels == {(b"Normal", 0), (b"COVID", 1)}


def _run_module_scoped(input_base, tmp_path_factory, beam_args):
    runner = example_gen_runner(tmp_path_factory.mktemp("run"))
    return runner(input_base, beam_args=beam_args,
                  **{executor.MAX_QUARANTINE_FRACTION: 0.2})


def _index(run):
    lines = _read(run.summary_artifact.uri, executor.INDEX_FILE).splitlines()
    return {entry["path"]: entry for entry in map(json.loads, lines)}


def _split_files(run):
    """{split: {file name: bytes}} of the Examples artifact."""
    out = {}
    for split in spec.SPLITS:
        folder = os.path.join(run.examples.uri, f"Split-{split}")
        out[split] = {name: open(os.path.join(folder, name), "rb").read()
                      for name in os.listdir(folder)}
    return out


def _read(folder, name):
    with open(os.path.join(folder, name)) as f:
        return f.read()
