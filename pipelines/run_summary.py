"""What the latest pipeline run produced, read back from its MLMD store.

The CLI prints this after a run: where the report, the pushed model and the store are, each
model kind's gates with their numbers and thresholds, and which kind was pushed and why.
Reading MLMD (not logs) keeps it true for cached and resumed runs alike.
"""

import dataclasses
import os

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.edge_pusher import read_push_record
from components.lib.evaluation import GateConfig, GateOutcome, gate_outcomes
from components.quantizer import read_variants_table
from components.report import REPORT_FILENAME


@dataclasses.dataclass
class ModelOutcome:
    """One model kind in the run: its blessing, gates and selected TFLite variant."""

    kind: str
    blessed: bool | None = None
    gates: list[GateOutcome] = dataclasses.field(default_factory=list)
    selected_variant: str | None = None
    # The acquisition-shift battery's verdict on the selected variant (else the float model).
    shift_battery: str | None = None

    def line(self) -> str:
        blessing = {True: "BLESSED", False: "NOT blessed", None: "not evaluated"}[self.blessed]
        variant = f", variant {self.selected_variant}" if self.selected_variant else ""
        return f"  model {self.kind}: {blessing}{variant}"


@dataclasses.dataclass
class RunSummary:
    run_id: str
    metadata_path: str
    executions: dict  # component id → last state name in this run (COMPLETE, CACHED, FAILED…)
    report_html: str | None = None
    pushed_dir: str | None = None
    push_reason: str | None = None
    primary_kind: str = ""  # the kind the Pusher serves (the first one configured)
    models: dict = dataclasses.field(default_factory=dict)  # kind → ModelOutcome

    @property
    def pushed(self) -> bool:
        return self.pushed_dir is not None

    @property
    def primary(self) -> ModelOutcome:
        return self.models.get(self.primary_kind) or ModelOutcome(self.primary_kind)

    @property
    def blessed(self) -> bool | None:
        return self.primary.blessed

    @property
    def gates(self) -> list[GateOutcome]:
        return self.primary.gates

    def lines(self) -> list[str]:
        out = [f"run {self.run_id}: " + ", ".join(
            f"{name} {state}" for name, state in sorted(self.executions.items()))]
        for kind in sorted(self.models, key=lambda k: (k != self.primary_kind, k)):
            outcome = self.models[kind]
            out.append(outcome.line() + (" (primary: the kind that is pushed)"
                                         if kind == self.primary_kind and len(self.models) > 1
                                         else ""))
            out += [f"    gate  {gate.describe()}" for gate in outcome.gates]
            if outcome.shift_battery:
                out.append(f"    shift {outcome.shift_battery}")
        if self.pushed:
            out.append(f"  pushed {self.primary_kind} model to {self.pushed_dir}: "
                       f"{self.push_reason or 'blessed, variant selected'}")
        else:
            out.append(f"  nothing pushed: {self.push_reason or self._not_pushed_reason()}")
        out.append(f"  report {self.report_html or '(none)'}")
        out.append(f"  MLMD store {self.metadata_path}")
        return out

    def _not_pushed_reason(self) -> str:
        if self.primary.blessed is False:
            return f"the {self.primary_kind} model was not blessed"
        return "the Pusher did not run"


def latest_run_summary(metadata_path: str, gates: GateConfig) -> RunSummary:
    """What the latest run did; `gates` is the primary kind's GateConfig (its model_kind names
    the kind that is pushed)."""
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
    summary = RunSummary(run_id=run.name, metadata_path=metadata_path, executions=states,
                         primary_kind=gates.model_kind)

    outputs = _outputs(store, by_component)
    report = outputs.get(("RunReportGen", "report"))
    if report is not None:
        summary.report_html = os.path.join(report.uri, REPORT_FILENAME)
    for kind, suffix in _kinds(states, gates.model_kind):
        outcome = ModelOutcome(kind)
        blessing = outputs.get(("Evaluator" + suffix, "blessing"))
        if blessing is not None:
            outcome.blessed = bool(blessing.custom_properties["blessed"].int_value)
        evaluation = outputs.get(("Evaluator" + suffix, "evaluation"))
        if evaluation is not None:
            outcome.gates = gate_outcomes(evaluation.uri,
                                          dataclasses.replace(gates, model_kind=kind))
        quantized = outputs.get(("Quantizer" + suffix, "quantized_model"))
        if quantized is not None and "selected_variant" in quantized.custom_properties:
            outcome.selected_variant = (
                quantized.custom_properties["selected_variant"].string_value or None)
        if quantized is not None:
            outcome.shift_battery = shift_battery_line(read_variants_table(quantized.uri),
                                                       outcome.selected_variant)
        summary.models[kind] = outcome
    pushed = outputs.get(("EdgePusher", "pushed_model"))
    if pushed is not None:
        record = read_push_record(pushed.uri)
        summary.push_reason = record.get("reason") if record else None
        if pushed.custom_properties["pushed"].int_value:
            summary.pushed_dir = pushed.custom_properties["pushed_destination"].string_value
    return summary


def shift_battery_line(table: dict | None, variant: str | None) -> str | None:
    """The battery's summary (pass or which checks failed, and the worst cell) for the selected
    variant, or for the float model when none was selected."""
    if not table or not table.get("shift_battery"):
        return None
    rows = {row["variant"]: row for row in table.get("variants", [])}
    chosen = rows.get(variant, {}).get("shift") if variant else None
    verdict = chosen or table["shift_battery"]["float"]
    return f"{variant if chosen else 'float model'}: {verdict['summary']}"


def _kinds(states: dict, primary: str) -> list[tuple[str, str]]:
    """(kind, component-id suffix) of each model kind that has an Evaluator or a Trainer."""
    kinds = {}
    for component in states:
        base, _, kind = component.partition("_")
        if base in ("Trainer", "Evaluator", "Quantizer"):
            kinds[kind or primary] = f"_{kind}" if kind else ""
    return sorted(kinds.items(), key=lambda item: (item[0] != primary, item[0]))


def _store(metadata_path):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _outputs(store, by_component):
    """{(component id, output key): artifact} of this run's executions."""
    found = {}
    for component, execution in by_component.items():
        events = store.get_events_by_execution_ids([execution.id])
        outputs = [e for e in events if e.type in (metadata_store_pb2.Event.OUTPUT,
                                                   metadata_store_pb2.Event.DECLARED_OUTPUT)]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in outputs])}
        for event in outputs:
            key = event.path.steps[0].key if event.path.steps else ""
            found.setdefault((component, key), artifacts[event.artifact_id])
    return found
