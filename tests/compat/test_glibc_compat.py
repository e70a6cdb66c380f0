"""The TFX stack loads on this machine, including the glibc-2.39-only wheels (compat/glibc)."""

import platform
import subprocess
import sys
from pathlib import Path

import pytest

import trainer  # noqa: F401  (Keras 2 before TensorFlow loads)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compat" / "glibc"))
import patch_wheels

OLD_GLIBC = tuple(int(p) for p in platform.libc_ver()[1].split(".")[:2]) < (2, 39)


def test_whole_stack_imports():
    code = ("import tfx, tensorflow, tf_keras, tensorflow_model_optimization, tensorflow_addons, "
            "apache_beam, ai_edge_litert, ml_metadata, tensorflow_data_validation")
    # A fresh interpreter: nothing imported by other tests can mask a missing symbol.
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_mlmd_sqlite_store_round_trips_an_artifact(tmp_path):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "mlmd.sqlite")
    sqlite = metadata_store_pb2.SqliteMetadataSourceConfig
    config.sqlite.connection_mode = sqlite.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    artifact_type = metadata_store_pb2.ArtifactType(name="XRayModel")
    artifact_type.properties["variant"] = metadata_store_pb2.STRING
    type_id = store.put_artifact_type(artifact_type)
    artifact = metadata_store_pb2.Artifact(type_id=type_id, uri="/models/1")
    artifact.properties["variant"].string_value = "int8"
    [artifact_id] = store.put_artifacts([artifact])

    # A second connection reads what the first wrote to disk.
    [read] = metadata_store.MetadataStore(config).get_artifacts_by_id([artifact_id])
    assert read.uri == "/models/1"
    assert read.properties["variant"].string_value == "int8"


def test_tfdv_computes_statistics():
    import pandas as pd
    import tensorflow_data_validation as tfdv

    stats = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"label": [0, 1, 1, 3]}))
    [feature] = stats.datasets[0].features
    assert stats.datasets[0].num_examples == 4
    assert feature.num_stats.max == 3


@pytest.mark.skipif(not OLD_GLIBC, reason="glibc >= 2.39: the wheels are installed unpatched")
def test_installed_extensions_carry_the_shim_and_weak_version_needs():
    import ml_metadata
    import tensorflow_data_validation

    for package in (ml_metadata, tensorflow_data_validation):
        [extension] = [p for p in Path(package.__file__).parent.rglob("*_extension.so")]
        assert (extension.parent / patch_wheels.SHIM_NAME).exists()
        needs = patch_wheels.version_needs(extension)
        too_new = {name: weak for name, weak in needs.items()
                   if name.encode() in patch_wheels.TOO_NEW_VERSIONS}
        assert too_new, f"{extension.name}: expected too-new version needs"
        assert all(too_new.values()), f"{extension.name}: not all weak: {too_new}"
