"""Helpers for the ingestion tests: a tiny demo tree with planted faults, and a runner."""

import json
import os
import shutil
import struct
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from components.lib import demo_data
from edge import spec

PER_CLASS = 8
SIZE = 64
MAX_SIDE = 64
# Above the real DICOM (1841x1955 = 3.6 MP), below the planted header-only bomb.
MAX_PIXELS = 5_000_000

# What the planted faults must produce, exactly.
PLANTED_QUARANTINE = {
    "COVID/images/truncated.png": "truncated",
    "Normal/images/empty.png": "empty_file",
    "Lung_Opacity/images/notes.png": "not_an_image",
    "Lung_Opacity/images/bomb.png": "too_large",
    # The same pixels filed under two classes: both copies.
    "Normal/images/Normal-1.png": "conflicting_label",
    "Viral Pneumonia/images/copy-of-normal.png": "conflicting_label",
}
PLANTED_GOOD = (
    "COVID/images/COVID-2-copy.png",  # within-class duplicate of COVID-2.png
    "Normal/images/sixteen-bit.png",
    "Lung_Opacity/images/rgba.png",
    "Viral Pneumonia/images/RG1_UNCR.dcm",
)
PLANTED_DUPLICATE_GROUP = ["COVID/images/COVID-2-copy.png", "COVID/images/COVID-2.png"]
EXPECTED_FILES = PER_CLASS * len(spec.CLASS_NAMES) + len(PLANTED_QUARANTINE) - 1 + len(
    PLANTED_GOOD)  # Normal-1.png is a demo file and a planted conflict
EXPECTED_EXAMPLES = EXPECTED_FILES - len(PLANTED_QUARANTINE)


def find_real_dicom():
    pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    path = get_testdata_file("RG1_UNCR.dcm", download=False)
    if path is None:
        pytest.skip("pydicom-data is not installed (RG1_UNCR.dcm unavailable offline)")
    return path


def make_clean_tree(root):
    demo_data.generate(root, per_class=PER_CLASS, size=SIZE, seed=21)
    return str(root)


def make_planted_tree(root, real_dicom):
    """Demo data in the Kaggle layout plus every ingestion fault we plant, and a masks/ folder."""
    demo_data.generate(root, per_class=PER_CLASS, size=SIZE, seed=7)
    covid, normal = root / "COVID" / "images", root / "Normal" / "images"
    opacity, viral = root / "Lung_Opacity" / "images", root / "Viral Pneumonia" / "images"

    good_png = (covid / "COVID-1.png").read_bytes()
    (covid / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    (normal / "empty.png").write_bytes(b"")
    (opacity / "notes.png").write_text("patient list, not an image\n")
    (opacity / "bomb.png").write_bytes(_png_header_only(4000, 4000))
    shutil.copy(normal / "Normal-1.png", viral / "copy-of-normal.png")
    shutil.copy(covid / "COVID-2.png", covid / "COVID-2-copy.png")

    rng = np.random.default_rng(3)
    sixteen = (rng.integers(0, 4096, size=(SIZE, SIZE))).astype(np.uint16)
    Image.fromarray(sixteen).save(normal / "sixteen-bit.png")
    gray = rng.integers(0, 256, size=(SIZE, SIZE + 8), dtype=np.uint8)
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    Image.fromarray(rgba).save(opacity / "rgba.png")
    shutil.copy(real_dicom, viral / "RG1_UNCR.dcm")

    # Kaggle ships segmentation masks next to images/ (the phantoms write their finding masks
    # there too): they must be ignored, even one that is a copy of a real image.
    os.makedirs(root / "COVID" / "masks", exist_ok=True)
    shutil.copy(covid / "COVID-3.png", root / "COVID" / "masks" / "COVID-3-copy.png")
    return str(root)


def example_gen_runner(tmp_path):
    """Runs the ImageExampleGen executor's Do with real artifacts; returns what it wrote."""

    def run(input_base, beam_args=(), **properties):
        from tfx.dsl.components.base import base_beam_executor
        from tfx.types import standard_artifacts

        from components.image_example_gen import executor
        from components.lib import artifact_types

        outputs = {
            executor.EXAMPLES_KEY: standard_artifacts.Examples(),
            executor.QUARANTINE_KEY: artifact_types.QuarantineReport(),
            executor.SUMMARY_KEY: artifact_types.IngestSummary(),
        }
        for key, artifact in outputs.items():
            artifact.uri = str(tmp_path / key)
            os.makedirs(artifact.uri, exist_ok=True)
        props = {executor.INPUT_BASE: input_base, executor.MAX_SIDE: MAX_SIDE,
                 executor.MAX_PIXELS: MAX_PIXELS}
        props.update(properties)
        context = base_beam_executor.BaseBeamExecutor.Context(
            beam_pipeline_args=list(beam_args), tmp_dir=str(tmp_path / "tmp"))
        executor.Executor(context).Do({}, {k: [v] for k, v in outputs.items()}, props)
        return SimpleNamespace(
            examples=outputs[executor.EXAMPLES_KEY],
            quarantine_artifact=outputs[executor.QUARANTINE_KEY],
            summary_artifact=outputs[executor.SUMMARY_KEY],
            summary=_load_json(outputs[executor.SUMMARY_KEY].uri, executor.SUMMARY_FILE),
            quarantine=_load_json(outputs[executor.QUARANTINE_KEY].uri,
                                  executor.QUARANTINE_JSON),
        )

    return run


def read_examples(examples_artifact, split):
    """All tf.Examples of one split, as dicts of python values."""
    import tensorflow as tf
    from tfx.types import artifact_utils

    folder = artifact_utils.get_split_uri([examples_artifact], split)
    files = sorted(tf.io.gfile.glob(os.path.join(folder, "*.gz")))
    records = []
    for raw in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        example = tf.train.Example.FromString(raw)
        values = {}
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values[key] = list(getattr(feature, kind).value)[0]
        records.append(values)
    return records


def _load_json(folder, name):
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


def _png_header_only(width, height):
    """A PNG signature and an IHDR claiming width x height, with a tiny IDAT."""

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
