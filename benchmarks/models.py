"""Trained attention, baseline and Siamese models for the benchmark, from the real pipeline.

Runs `pipelines.local_runner.run` with the three model kinds on demo phantoms in the benchmark's
work dir (TFX's cache reuses every component whose inputs did not change, so a second `make bench`
does not retrain), then reads the artifacts back from the run's MLMD store. The Quantizer
converts only blessed models; when it skipped one (small `--quick` data cannot pass the
production gates) the benchmark converts that SavedModel itself with the same
`components.quantizer.quantize_and_select`, and says so.
"""

import dataclasses
import os
import shutil
import subprocess
import time

from benchmarks.common import REPO_ROOT, pipeline_python, subprocess_env
from components.lib import demo_data
from components.quantizer import QuantizerConfig, quantize_and_select, read_variants_table
from pipelines.configs import PipelineConfig
from trainer.summary_file import SUMMARY_FILENAME, read_training_summary

BENCH_KINDS = ("attention", "baseline", "siamese")  # attention first: the one pushed
VARIANTS = ("float32", "float16", "dynamic", "int8")


@dataclasses.dataclass
class TrainedModel:
    kind: str
    saved_model_dir: str
    training_summary: dict
    trainer_wall_s: float | None  # the Trainer execution that produced the model (MLMD)
    trainer_state: str
    variants_dir: str
    variants: dict  # variants.json
    variants_source: str

    def tflite(self, variant: str) -> str | None:
        for row in self.variants.get("variants", []):
            if row["variant"] == variant and row.get("file"):
                return os.path.join(self.variants_dir, os.path.basename(row["file"]))
        return None


@dataclasses.dataclass
class BenchModels:
    config: PipelineConfig
    examples_uri: str
    models: dict  # kind → TrainedModel
    pushed_dir: str | None
    pipeline_seconds: float | None  # wall time of this invocation's pipeline run
    pipeline_error: str | None
    states: dict  # component id → state in the latest run


def obtain_models(work_dir: str, image_size: int, per_class: int, epochs: int | None,
                  run_pipeline: bool = True) -> BenchModels:
    data_root = os.path.join(work_dir, f"data-{image_size}px-{per_class}")
    _write_phantoms(data_root, per_class, image_size)
    settings = {
        "CXR_DATA_ROOT": data_root,
        "CXR_PIPELINE_ROOT": os.path.join(work_dir, f"pipeline-{image_size}px-{per_class}"),
        "CXR_MODELS": ",".join(BENCH_KINDS),
        "CXR_IMAGE_SIZE": str(image_size),
        "CXR_SYNTHETIC_DATA": "true",
    }
    if epochs:
        settings["CXR_EPOCHS"] = str(epochs)
    # The same settings the runner script reads (pipelines/configs.py).
    config = PipelineConfig.from_env(settings)
    seconds, error = None, None
    if run_pipeline:
        # In its own process: the benchmark's later measurements start from a lean parent.
        log = os.path.join(work_dir, "pipeline.log")
        print(f"bench: pipeline run of {BENCH_KINDS} on {data_root} → {config.pipeline_root} "
              f"(cached components are reused; log {log})", flush=True)
        started = time.monotonic()
        with open(log, "w") as handle:
            code = subprocess.run(
                [pipeline_python(), str(REPO_ROOT / "pipelines" / "local_runner.py")],
                cwd=REPO_ROOT, env=subprocess_env(settings), stdout=handle,
                stderr=subprocess.STDOUT).returncode
        seconds = round(time.monotonic() - started, 1)
        if code != 0:
            error = f"local_runner.py exited {code} (see {log})"
            print(f"bench: the pipeline run failed: {error}", flush=True)
    return _read_back(config, work_dir, seconds, error)


def _read_back(config, work_dir, seconds, error) -> BenchModels:
    from tfx.utils import path_utils

    store = _Store(config.metadata_path, config.pipeline_name)
    examples = store.output("ImageExampleGen", "examples")
    if examples is None:
        raise RuntimeError(f"no examples in {config.metadata_path}; the pipeline did not ingest")
    models = {}
    for kind in config.models:
        model = store.output(f"Trainer_{kind}", "model")
        if model is None:
            print(f"bench: no trained {kind} model in the store; skipped", flush=True)
            continue
        saved_model_dir = path_utils.serving_model_path(model.uri)
        summary = read_training_summary(saved_model_dir)
        if summary is None:
            raise FileNotFoundError(
                f"{os.path.join(saved_model_dir, SUMMARY_FILENAME)} is missing: Trainer_{kind}'s "
                "model has no training summary (it records the class order and config the "
                "benchmark needs); rerun the pipeline's Trainer")
        wall, state = store.producer_wall_seconds(model.id)
        quantized = store.output(f"Quantizer_{kind}", "quantized_model")
        variants_dir, variants, source = _variants(quantized, saved_model_dir, examples.uri,
                                                   summary, config, work_dir, kind)
        models[kind] = TrainedModel(kind, saved_model_dir, summary, wall, state, variants_dir,
                                    variants, source)
    pushed = store.output("EdgePusher", "pushed_model")
    pushed_dir = None
    if pushed is not None and pushed.custom_properties["pushed"].int_value:
        pushed_dir = pushed.custom_properties["pushed_destination"].string_value
    return BenchModels(config, examples.uri, models, pushed_dir, seconds, error,
                       store.latest_run_states())


def _variants(quantized, saved_model_dir, examples_uri, summary, config, work_dir, kind):
    """(directory, variants.json, where they came from): the Quantizer's, else our conversion."""
    if quantized is not None:
        table = read_variants_table(quantized.uri)
        if table and table.get("variants"):
            return quantized.uri, table, f"pipeline Quantizer_{kind} (variants.json)"
        reason = table.get("skipped", "no variants") if table else "no variants.json"
    else:
        reason = "the Quantizer did not run"
    out = os.path.join(work_dir, "converted", kind)
    stamp = os.path.join(out, "source.txt")
    if not (os.path.isfile(stamp) and open(stamp).read() == saved_model_dir
            and read_variants_table(out)):
        print(f"bench: converting {kind} ourselves ({reason})", flush=True)
        os.makedirs(out, exist_ok=True)
        quantize_and_select(saved_model_dir, examples_uri, out, QuantizerConfig(
            variants=VARIANTS, max_f1_drop=config.quantization_max_f1_drop,
            class_names=tuple(summary["config"]["class_names"]), seed=config.seed,
            fail_if_none_pass=False, skip_unblessed=False))
        with open(stamp, "w") as handle:
            handle.write(saved_model_dir)
    return out, read_variants_table(out), (f"converted by the benchmark with components.quantizer."
                        f"quantize_and_select ({reason})")


def _write_phantoms(root: str, per_class: int, size: int) -> None:
    marker = os.path.join(root, ".generated")
    stamp = (f"per_class={per_class} size={size} seed={demo_data.DEFAULT_SEED} "
             f"generator={demo_data.GENERATOR_VERSION}")
    if os.path.isfile(marker) and open(marker).read() == stamp:
        return  # same bytes as last time: the pipeline cache stays valid
    if os.path.isdir(root):  # another generator's phantoms: never mix them with these
        shutil.rmtree(root)
    demo_data.generate(root, per_class=per_class, size=size, seed=demo_data.DEFAULT_SEED)
    with open(marker, "w") as handle:
        handle.write(stamp)


class _Store:
    """Read-only look-ups in the pipeline's MLMD store."""

    def __init__(self, metadata_path: str, pipeline_name: str):
        from ml_metadata.metadata_store import metadata_store
        from ml_metadata.proto import metadata_store_pb2

        self.pb = metadata_store_pb2
        connection = metadata_store_pb2.ConnectionConfig()
        connection.sqlite.filename_uri = metadata_path
        connection.sqlite.connection_mode = \
            metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        self.store = metadata_store.MetadataStore(connection)
        self.pipeline_name = pipeline_name

    def output(self, component: str, key: str):
        """The `key` output of the component's latest successful (or cached) execution."""
        context = self.store.get_context_by_type_and_name(
            "node", f"{self.pipeline_name}.{component}")
        if context is None:
            return None
        ok = (self.pb.Execution.COMPLETE, self.pb.Execution.CACHED)
        executions = [e for e in self.store.get_executions_by_context(context.id)
                      if e.last_known_state in ok]
        for execution in sorted(executions, key=lambda e: e.id, reverse=True):
            for event in self.store.get_events_by_execution_ids([execution.id]):
                if event.type not in (self.pb.Event.OUTPUT, self.pb.Event.DECLARED_OUTPUT):
                    continue
                if event.path.steps and event.path.steps[0].key == key:
                    return self.store.get_artifacts_by_id([event.artifact_id])[0]
        return None

    def producer_wall_seconds(self, artifact_id: int):
        """Wall time and state of the execution that produced (not cached) the artifact."""
        events = self.store.get_events_by_artifact_ids([artifact_id])
        ids = [e.execution_id for e in events if e.type == self.pb.Event.OUTPUT]
        for execution in self.store.get_executions_by_id(ids):
            if execution.last_known_state == self.pb.Execution.COMPLETE:
                seconds = (execution.last_update_time_since_epoch
                           - execution.create_time_since_epoch) / 1000
                return round(seconds, 1), "COMPLETE"
        return None, "unknown"

    def latest_run_states(self) -> dict:
        """Component id → state of its execution in the latest pipeline run."""
        runs = self.store.get_contexts_by_type("pipeline_run")
        if not runs:
            return {}
        run = max(runs, key=lambda context: context.create_time_since_epoch)
        in_run = {e.id for e in self.store.get_executions_by_context(run.id)}
        states = {}
        for node in self.store.get_contexts_by_type("node"):
            mine = [e for e in self.store.get_executions_by_context(node.id) if e.id in in_run]
            if mine:
                latest = max(mine, key=lambda e: e.id)
                states[node.name.split(".", 1)[-1]] = self.pb.Execution.State.Name(
                    latest.last_known_state)
        return states
