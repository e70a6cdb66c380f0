"""What the latest pipeline run produced, read back from its MLMD store.

The CLI prints this after a run: where the report, the pushed model and the store are, and each
gate's outcome with its number and threshold. Reading MLMD (not logs) keeps it true for cached
and resumed runs alike.
"""

import dataclasses
import os

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.evaluation import GateConfig, GateOutcome, gate_outcomes
from components.report import REPORT_FILENAME


@dataclasses.dataclass
class RunSummary:
    run_id: str
    metadata_path: str
    executions: dict  # component id → last state name in this run (COMPLETE, CACHED, FAILED…)
    report_html: str | None = None
    pushed_dir: str | None = None
    blessed: bool | None = None
    gates: list[GateOutcome] = dataclasses.field(default_factory=list)

    @property
    def pushed(self) -> bool:
        return self.pushed_dir is not None

    def lines(self) -> list[str]:
        out = [f"run {self.run_id}: " + ", ".join(
            f"{name} {state}" for name, state in sorted(self.executions.items()))]
        out += [f"  gate  {gate.describe()}" for gate in self.gates]
        out.append(f"  model {'BLESSED' if self.blessed else 'NOT blessed'}; "
                   + (f"pushed to {self.pushed_dir}" if self.pushed else "nothing pushed"))
        out.append(f"  report {self.report_html or '(none)'}")
        out.append(f"  MLMD store {self.metadata_path}")
        return out


def latest_run_summary(metadata_path: str, gates: GateConfig) -> RunSummary:
    store = _store(metadata_path)
    runs = store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise RuntimeError(f"no pipeline run recorded in {metadata_path}")
    run = max(runs, key=lambda context: context.create_time_since_epoch)
    in_run = {e.id for e in store.get_executions_by_context(run.id)}
    states = {}
    by_component = {}
    # Node contexts are named "<pipeline name>.<component id>".
    for node in store.get_contexts_by_type("node"):
        component = node.name.split(".", 1)[-1]
        mine = [e for e in store.get_executions_by_context(node.id) if e.id in in_run]
        if mine:
            latest = max(mine, key=lambda e: e.create_time_since_epoch)
            states[component] = metadata_store_pb2.Execution.State.Name(latest.last_known_state)
            by_component[component] = latest
    summary = RunSummary(run_id=run.name, metadata_path=metadata_path, executions=states)

    outputs = _outputs(store, by_component)
    report = outputs.get(("RunReportGen", "report"))
    if report is not None:
        summary.report_html = os.path.join(report.uri, REPORT_FILENAME)
    blessing = outputs.get(("Evaluator", "blessing"))
    if blessing is not None:
        summary.blessed = bool(blessing.custom_properties["blessed"].int_value)
    evaluation = outputs.get(("Evaluator", "evaluation"))
    if evaluation is not None:
        summary.gates = gate_outcomes(evaluation.uri, gates)
    pushed = outputs.get(("EdgePusher", "pushed_model"))
    if pushed is not None and pushed.custom_properties["pushed"].int_value:
        summary.pushed_dir = pushed.custom_properties["pushed_destination"].string_value
    return summary


def _store(metadata_path):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _outputs(store, by_component):
    """{(component id without kind suffix, output key): artifact} for the first-kind components."""
    found = {}
    for component, execution in by_component.items():
        base = component.split("_")[0] if component.startswith(
            ("Trainer_", "Evaluator_", "Quantizer_")) else component
        events = store.get_events_by_execution_ids([execution.id])
        outputs = [e for e in events if e.type in (metadata_store_pb2.Event.OUTPUT,
                                                   metadata_store_pb2.Event.DECLARED_OUTPUT)]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in outputs])}
        for event in outputs:
            key = event.path.steps[0].key if event.path.steps else ""
            found.setdefault((base, key), artifacts[event.artifact_id])
    return found
