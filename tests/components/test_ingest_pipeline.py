"""The ingestion components in a real TFX pipeline, with the standard TFDV components after them."""

import json
import os

import pytest
from tfx import v1 as tfx

from components.image_example_gen.component import ImageExampleGen
from components.image_validator import ImageValidator
from components.lib.artifact_types import ImageValidationFindings
from edge import spec


@pytest.mark.slow
def test_standard_components_consume_the_image_examples(clean_tree, tmp_path):
    metadata_path = str(tmp_path / "metadata.sqlite")
    example_gen = ImageExampleGen(input_base=clean_tree, max_side=64)
    statistics = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema = tfx.components.SchemaGen(statistics=statistics.outputs["statistics"])
    validator = tfx.components.ExampleValidator(statistics=statistics.outputs["statistics"],
                                                schema=schema.outputs["schema"])
    images = ImageValidator(examples=example_gen.outputs["examples"],
                            ingest_summary=example_gen.outputs["ingest_summary"],
                            class_names=spec.CLASS_NAMES)
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="ingest-test",
        pipeline_root=str(tmp_path / "root"),
        components=[example_gen, statistics, schema, validator, images],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path),
        beam_pipeline_args=["--direct_num_workers=1"],
    )

    tfx.orchestration.LocalDagRunner().run(pipeline)

    store = _store(metadata_path)
    executions = store.get_executions()
    assert len(executions) == 5
    assert all(e.last_known_state == e.COMPLETE for e in executions)
    [findings] = store.get_artifacts_by_type(ImageValidationFindings.TYPE_NAME)
    with open(os.path.join(findings.uri, "findings.json")) as f:
        assert json.load(f)["passed"] is True
    [schema_artifact] = store.get_artifacts_by_type("Schema")
    schema_text = open(os.path.join(schema_artifact.uri, "schema.pbtxt")).read()
    for key in (spec.IMAGE_KEY, spec.LABEL_KEY, spec.CONTENT_HASH_KEY, spec.WIDTH_KEY):
        assert f'name: "{key}"' in schema_text
    [statistics_artifact] = store.get_artifacts_by_type("ExampleStatistics")
    assert sorted(os.listdir(statistics_artifact.uri)) == sorted(f"Split-{s}" for s in spec.SPLITS)


def _store(metadata_path):
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata

    return metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
