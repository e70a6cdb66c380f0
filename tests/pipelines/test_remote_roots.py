"""A pipeline root on a bucket: URIs pass through unmangled, and the one thing that must be
local for the local and Beam runners (the SQLite MLMD store) fails fast, saying why."""

import pytest

from components.lib.storage import LocalPathRequired
from pipelines import local_runner
from pipelines.configs import PipelineConfig
from pipelines.pipeline import create_pipeline


def test_bucket_roots_reach_the_components_as_uris():
    config = PipelineConfig(data_root="gs://bucket/cxr", pipeline_root="gs://bucket/runs")
    pipeline = create_pipeline(config)
    pusher = next(c for c in pipeline.components if c.id == "EdgePusher")
    assert pusher.exec_properties["push_destination"] == "gs://bucket/runs/serving"
    example_gen = next(c for c in pipeline.components if c.id == "ImageExampleGen")
    assert example_gen.exec_properties["quarantine_evidence_dir"] == "gs://bucket/runs/quarantine"
    assert pipeline.pipeline_info.pipeline_root == "gs://bucket/runs"
    assert pipeline.metadata_connection_config is None  # Kubeflow keeps its own store


def test_local_runner_refuses_a_remote_sqlite_store_and_takes_a_local_one(tmp_path):
    config = PipelineConfig(data_root="gs://bucket/cxr", pipeline_root="gs://bucket/runs")
    with pytest.raises(LocalPathRequired) as raised:
        local_runner.run(config)
    message = str(raised.value)
    assert "gs://bucket/runs/metadata.sqlite" in message and "CXR_METADATA_DB" in message
    local = PipelineConfig.from_env({"CXR_PIPELINE_ROOT": "gs://bucket/runs",
                                     "CXR_METADATA_DB": str(tmp_path / "m.sqlite")})
    assert local.local_metadata_path() == str(tmp_path / "m.sqlite")
    assert create_pipeline(local).metadata_connection_config.sqlite.filename_uri == str(
        tmp_path / "m.sqlite")
