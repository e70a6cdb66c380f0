"""RESULTS.md from results.json: a table per topic, the machine, each goal with pass/miss.

run_all.py calls `render`; to re-render an existing results.json:
    python benchmarks/report.py benchmarks/results.json > benchmarks/RESULTS.md
"""

import json
import os
import re
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from benchmarks import serve_load

VARIANT_ORDER = ("savedmodel", "float32", "float16", "dynamic", "int8")
# The sections in the order they are written, each with the `--update` topic it comes from.
SECTIONS = (("Goals", None), ("Deployment resolution: edge latency at {size} px", "deploy"),
            ("Models under test", "models"), ("Attention vs baseline vs Siamese", "compare"),
            ("Demo size: edge latency per image and macro-F1 loss", "latency"),
            ("Demo size: model size per variant", "latency"),
            ("Edge runner footprint", "footprint"), ("Training throughput", "training"),
            ("Streaming input", "streaming"), ("ExampleGen ingest", "ingest"),
            ("`make demo` wall time", "demo"), ("`cxr-edge serve` under load", "serve"))
# Notes that hold whatever is re-measured; the rest of a row's note is derived from results.
NOTES = {"Goals": "each row comes from the topic it names",
         "deploy": "untrained architectures, no referral head or consistency check"}
USES_MODELS = ("compare", "latency", "footprint", "training")  # run_all.NEEDS_MODELS
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
_TMP_PATH = re.compile(r"/tmp/(?:[\w.+-]+/)*([\w.+-]*[\w+-])")


def render(results: dict) -> str:
    results = _repo_relative(results, _repo_roots(results))
    out = ["# cxr-edge benchmarks", ""]
    if results["mode"] != "full":
        out += [f"> **{results['mode'].upper()}** — numbers from `run_all.py --quick`.", ""]
    out += _intro(results)
    out += _topics(results)
    out += _machine(results["machine"], results)
    out += _goals(results)
    out += _deploy(results.get("deploy"))
    out += _models(results.get("models"))
    out += _compare(results.get("compare"), results.get("latency"))
    out += _latency(results.get("latency"), results["machine"],
                    (results.get("models") or {}).get("image_size"))
    out += _sizes(results.get("latency"))
    out += _footprint(results.get("footprint"))
    out += _training(results.get("training"))
    out += _streaming(results.get("streaming"))
    out += _ingest(results.get("ingest"))
    out += _demo(results.get("demo"))
    serve = serve_load.render_markdown(results)
    if serve:
        out += serve.rstrip("\n").split("\n") + [""]
    if results["errors"]:
        out += ["## Topics that failed", ""]
        out += [f"- **{name}**: `{error[:300]}`" for name, error in results["errors"].items()]
        out.append("")
    return "\n".join(out) + "\n"


def _repo_roots(results) -> list[str]:
    """This checkout's root, and the one results.json was written in (its default out_dir)."""
    roots = [REPO_ROOT]
    out_dir = (results.get("settings") or {}).get("out_dir") or ""
    if os.path.basename(out_dir.rstrip("/")) == "benchmarks":
        roots.append(os.path.dirname(out_dir.rstrip("/")))
    return roots


def _repo_relative(value, roots):
    """Every string with the repo root stripped from its paths; a /tmp path becomes its name."""
    if isinstance(value, dict):
        return {key: _repo_relative(item, roots) for key, item in value.items()}
    if isinstance(value, list):
        return [_repo_relative(item, roots) for item in value]
    if not isinstance(value, str):
        return value
    for root in roots:
        value = "." if value == root else value.replace(root + "/", "")
    return _TMP_PATH.sub(r"\1", value)


def _intro(results) -> list[str]:
    if not results.get("updates"):
        return ["Written by `make bench` (`benchmarks/run_all.py`); every number below was "
                "measured in that one run (`results.json` holds them all). Data: SYNTHETIC "
                "demo phantoms.", ""]
    commits = {_measured(results, topic)[1] for _, topic in SECTIONS if results.get(topic)}
    cores = results["machine"].get("affinity_cores") or results["machine"].get("cpu_count")
    return ["Written by `make bench` (`benchmarks/run_all.py`; `results.json` holds every "
            "number). `run_all.py --update` re-measures chosen topics into the existing "
            "results, so the sections below were measured at different times"
            + (", on different code" if len(commits) > 1 else "")
            + ". The table says when and on which commit each one was measured. Data: "
            f"SYNTHETIC demo phantoms. Machine: the {cores}-core build machine described under "
            "Machine. Timings move by tens of percent between runs on it, so compare them "
            "within a table, not across tables.", ""]


def _measured(results, topic) -> tuple[str, str]:
    """When and on which commit a topic was measured: its latest --update, else the first run."""
    source = results["machine"]
    for update in results.get("updates", []):
        if topic in update["topics"]:
            source = update
    commit = str(source.get("git_commit"))
    if source.get("git_uncommitted_py"):
        commit += " + uncommitted .py files"
    return source["date_utc"], commit


def _topics(results) -> list[str]:
    rows = []
    for section, topic in SECTIONS:
        if topic is None:
            if _goals(results):
                rows.append([section, "–", "–", "–", NOTES.get(section, "")])
            continue
        if not results.get(topic):
            continue
        if topic == "deploy":
            section = section.format(size=results["deploy"]["image_size"])
        when, commit = _measured(results, topic)
        rows.append([section, f"`{topic}`", when, commit, _note(results, topic)])
    return _table(["section", "topic (`--update` name)", "measured (UTC)", "commit", "note"],
                  rows)


def _note(results, topic) -> str:
    if topic in NOTES:
        return NOTES[topic]
    models = results.get("models") or {}
    same_run = bool(models) and _measured(results, topic) == _measured(results, "models")
    if topic == "models":
        epochs = sorted({m["epochs"] for m in models["models"].values()}, key=str)
        count = len(models["models"])
        return (f"the {_WORDS.get(count, count)} models the benchmark trains ("
                + "/".join(map(str, epochs)) + " epochs)")
    if topic in USES_MODELS and same_run:
        return "those models"
    if topic == "serve" and same_run:
        model = results["serve"]["model"]
        return (f"a {model['variant'] or model['quantization']} {model['input_size']} px model "
                "of that run")
    return ""


def _table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _verdict(ok) -> str:
    return "n/a" if ok is None else ("**pass**" if ok else "**MISS**")


def _machine(m, results) -> list[str]:
    first = " (first full run)" if results.get("updates") else ""
    rows = [["date (UTC)" + (" of the first full run" if first else ""), m["date_utc"]],
            ["CPU", m["cpu_model"]],
            ["cores", f"{m['cpu_count']} ({m['affinity_cores']} usable)"],
            ["SIMD", ", ".join(m["simd_flags"]) or "-"], ["RAM", f"{m['ram_gb']} GB"],
            ["OS", m["os"]], ["Python", m["python"]],
            ["TensorFlow / TFX", f"{m['tensorflow']} / {m['tfx']}"],
            ["ai-edge-litert", f"{m['ai_edge_litert_edge_venv']} (edge interpreter), "
                               f"{m['ai_edge_litert_pipeline_venv']} (pipeline venv)"],
            ["edge interpreter", m["edge_interpreter"]],
            ["load average start → end" + first, f"{m['load_average_at_start']} → "
                                                 f"{m.get('load_average_at_end')}"],
            ["benchmark wall time" + first, f"{results.get('bench_wall_s', 0) / 60:.1f} min"],
            ["code" + first, f"commit {m.get('git_commit')}" + (
                "; uncommitted .py files in the working tree at the start: "
                + ", ".join(m["git_uncommitted_py"]) if m.get("git_uncommitted_py") else
                "; no uncommitted .py files")]]
    lines = ["## Machine", ""] + _table(["", ""], rows)
    busiest = max(m["load_average_at_start"][0], (m.get("load_average_at_end") or [0])[0])
    if busiest > m["affinity_cores"]:
        lines += [f"**The machine was shared** (1-minute load average up to {busiest} on "
                  f"{m['affinity_cores']} cores): other processes competed for the CPU, so "
                  "timings — most of all the 2-thread ones — are pessimistic and noisier than "
                  "on an idle machine.", ""]
    return lines


def _goals(results) -> list[str]:
    rows = []
    deploy = results.get("deploy") or {}
    for ratio in deploy.get("int8_vs_float32", []):
        if ratio["goal_met"] is not None:
            rows.append([f"int8 ≤ 0.5 × float32 latency ({deploy['image_size']} px, "
                         f"{ratio['model']}, {ratio['threads']} thr, paired)",
                         f"{ratio.get('ratio_paired', ratio['ratio_median'])}×",
                         _verdict(ratio["goal_met"])])
    latency = results.get("latency") or {}
    for check in latency.get("selection_check", []):
        rows.append([f"Quantizer shipped the fastest passing variant ({check['model']}, "
                     f"demo size, {check.get('threads', '?')} thr, within its "
                     f"{check.get('margin', 0):.0%} margin)",
                     f"{check['selected']} {check.get('selected_ms')} ms vs fastest "
                     f"{check.get('fastest_passing')} {check.get('fastest_ms')} ms",
                     _verdict(check["goal_met"])])
    for size in latency.get("sizes", []):
        if "goal_met" in size:
            rows.append(["int8 attention model ≤ 5.5 MB", f"{size['size_mb']} MB",
                         _verdict(size["goal_met"])])
    for row in latency.get("rows", []):
        if row["threads"] == min(r["threads"] for r in latency["rows"]) and "f1_goal_met" in row:
            rows.append([f"macro-F1 loss ≤ 0.5 pt ({row['model']} {row['variant']})",
                         f"{row['macro_f1_loss_points']} pt", _verdict(row["f1_goal_met"])])
    for row in results.get("training") or []:
        if "ratio_fit_steps" in row:
            rows.append([f"TFX Trainer fit steps ≥ 0.9 × plain fit images/s ({row['model']})",
                         f"{row['ratio_fit_steps']}× (whole Trainer epoch "
                         f"{row.get('ratio_steady')}×)", _verdict(row["goal_met"])])
    stream = results.get("streaming") or {}
    if stream:
        rows.append([f"streaming: peak RSS at 4N ≤ 1.3 × at N (N = {stream['n_images']}, "
                     f"{stream['image_size']} px)",
                     f"{stream['rss_ratio_4n_over_n']['streaming']}× (in-memory "
                     f"{stream['rss_ratio_4n_over_n']['memory']}×)",
                     _verdict(stream["rss_goal_met"])])
        ratios = stream["images_per_s_ratio_streaming_over_memory"]
        rows.append(["streaming ≥ 0.9 × in-memory images/s (one epoch, read + train)",
                     f"{ratios['N']}× at N, {ratios['4N']}× at 4N",
                     _verdict(stream["throughput_goal_met"])])
    if not rows:
        return []
    return ["## Goals", ""] + _table(["goal", "measured", "verdict"], rows)


def _models(models) -> list[str]:
    if not models:
        return []
    rows = [[kind, m["epochs"], m["train_examples"], _f(m["best_eval_macro_f1"]),
             _f(m["reference_macro_f1"]), m["quantizer_selected"], m["variants_source"]]
            for kind, m in models["models"].items()]
    took = models["pipeline_seconds_this_invocation"]
    lines = ["## Models under test", "",
             f"Trained by the real pipeline at {models['image_size']} px "
             f"(`{models['pipeline_root']}`); this invocation's pipeline run took "
             f"{'%.1f min' % (took / 60) if took else 'no time (not run)'}"
             f"{' and FAILED: ' + models['pipeline_error'] if models['pipeline_error'] else ''}"
             f". Component states: "
             + ", ".join(f"{k} {v}" for k, v in sorted(models["latest_run_states"].items())), ""]
    return lines + _table(["model", "epochs", "train images", "best eval macro F1",
                           "test macro F1 (SavedModel)", "Quantizer selected",
                           "TFLite variants from"], rows)


def _compare(compare, latency) -> list[str]:
    if not compare:
        return []
    timed = {(r["model"], r["variant"]): r for r in (latency or {}).get("rows", [])
             if r["threads"] == 1}
    rows = []
    for row in compare["rows"]:
        pointing = "; ".join(
            f"{key} {p['grid'][0]}×{p['grid'][1]}: {_f(p['score'])} (chance {_f(p['chance'])}, "
            f"{p['hits']}/{p['scored']})" for key, p in row["pointing_game"].items()) \
            or "no attention maps"
        shipped = timed.get((row["model"], row["selected_variant"]), {})
        rows.append([row["model"], row["test_images"], _f(row["macro_f1"]),
                     _f(row["covid_recall"]), pointing, row["selected_variant"] or "none",
                     _f(row["selected_size_mb"]), _f(shipped.get("median_ms"))])
    return ["## Attention vs baseline vs Siamese (same demo data)", "",
            "Each model's SavedModel on the same test split (edge decoder), the pointing game on "
            "the phantoms' finding masks (the attention map's peak cell holds a finding pixel; "
            "chance: a random cell), and the variant its Quantizer shipped: file size and "
            "median latency per image at 1 thread from the latency section (the Siamese model "
            "has attention maps only when its backbone is the attention-gated B0; its default "
            "is plain B0).", ""] \
        + _table(["model", "test images", "macro F1", "COVID recall", "pointing game",
                  "shipped variant", "MB", "ms (1 thr)"], rows)


def _latency(latency, machine, size=None) -> list[str]:
    if not latency:
        return []
    rows = sorted(latency["rows"], key=lambda r: (r["model"], r["threads"],
                                                  VARIANT_ORDER.index(r["variant"])))
    table = [[r["model"], r["variant"], r["threads"], _median_cell(r), r["p90_ms"],
              r.get("latency_vs_savedmodel"), r["macro_f1"], r.get("macro_f1_loss_points"),
              _verdict(r.get("f1_goal_met")) if r["variant"] != "savedmodel" else "-",
              r.get("load_average_1min"), r["runtime"]] for r in rows]
    lines = ["## Demo size: edge latency per image and macro-F1 loss (trained models)", "",
             f"{latency['images']} test images, batch 1, {latency['passes']} timed pass(es) "
             f"after {latency['warmup']} warm-up calls, one fresh process per model and "
             f"thread count, in {latency.get('rounds', 1)} interleaved round(s): the median "
             "shown is the fastest round's, in brackets the range of every round's (load only adds "
             "time); "
             "TFLite through `edge.classifier` "
             "(LiteRT) in the edge interpreter, the SavedModel's `serving_tensor` signature "
             "through TensorFlow with intra-op threads set. F1 loss = SavedModel macro F1 − "
             "variant macro F1 on the same images, in points (goal ≤ 0.5)."
             + _oversubscribed(latency["rows"], machine), ""]
    lines += _table(["model", "runtime", "threads", "median ms", "p90 ms", "× SavedModel",
                     "macro F1", "F1 loss (pt)", "F1 goal", "load avg", "engine"], table)
    checks = latency.get("selection_check") or []
    if checks:
        lines += ["### What the Quantizer shipped", "",
                  "The pipeline's Quantizer timed its variants itself (`python -m edge.latency`, "
                  "fresh process each) and chose by its objective; the check below re-judges "
                  "the choice with this benchmark's timing of the variants that passed the "
                  "Quantizer's gate, at the Quantizer's thread count and margin.", ""]
        lines += _table(["model", "objective", "shipped", "its median ms here",
                         "fastest passing here", "its median ms", "Quantizer's own ms",
                         "verdict", "Quantizer's reason"],
                        [[c["model"], c.get("objective"), c["selected"], c.get("selected_ms"),
                          c.get("fastest_passing"), c.get("fastest_ms"),
                          ", ".join(f"{k} {v}" for k, v in
                                    (c.get("quantizer_latencies_ms") or {}).items()),
                          _verdict(c["goal_met"]), c.get("reason") or c.get("note")]
                         for c in checks])
    ratios = latency["int8_vs_float32"]
    if ratios:
        lines += ["### int8 vs float32 at the demo size (informational; the goal is judged at "
                  "the deployment resolution)", ""]
        lines += _table(["model", "threads", "int8 median ms", "float32 median ms",
                         "ratio (median)", "ratio (p90)"],
                        [[r["model"], r["threads"], r["int8_median_ms"], r["float32_median_ms"],
                          r["ratio_median"], r["ratio_p90"]] for r in ratios])
        lines += [_xnnpack_statement(ratios, size), ""]
    return lines


def _deploy(deploy) -> list[str]:
    if not deploy:
        return []
    size = deploy["image_size"]
    by_key = {(r["model"], r["variant"], r["threads"]): r for r in deploy["rows"]}
    threads = deploy["threads"]
    table = []
    for kind, variant in sorted({(r["model"], r["variant"]) for r in deploy["rows"]},
                                key=lambda k: (k[0], VARIANT_ORDER.index(k[1]))):
        first = by_key[(kind, variant, threads[0])]
        float32 = by_key.get((kind, "float32", threads[0]))
        table.append([kind, variant, first["quantization"], first["size_mb"]]
                     + [_median_cell(by_key.get((kind, variant, t))) for t in threads]
                     + [round(first["median_ms"] / float32["median_ms"], 2) if float32 else None,
                        first["cold_start_ms"]])
    loads = [x for r in deploy["rows"] for x in r["load_average_1min"]]
    machine_note = (f" {deploy['cores']} cores here: "
                    + ", ".join(f"{t} threads" for t in deploy["threads"] if t > deploy["cores"])
                    + " oversubscribe them (threads compete for the cores; those rows show the "
                    "cost of asking for more threads than cores, not a speed-up). A Raspberry "
                    "Pi 4/5 has 4 cores, where 4 threads is the natural setting."
                    if any(t > deploy["cores"] for t in deploy["threads"]) else "")
    lines = [f"## Deployment resolution: edge latency at {size} px", "",
             f"The real attention and baseline architectures at {size} px with "
             f"{deploy['models']}: latency and size do not depend on the weights' values, so "
             f"there are no F1 rows here (no model is trained at {size} px on this CPU-only "
             "machine; the demo-size section has F1 on trained models). Each row: "
             f"{deploy['worker']}, {deploy['warmup']} warm-up then the median of "
             f"{deploy['runs']} timed runs, {deploy['rounds']} interleaved rounds; the median "
             "shown is the fastest round's, in brackets the range of every round's. Cold start "
             "= model load + "
             f"first inference in that fresh process (median over rounds), at {threads[0]} "
             f"thread(s). 1-minute load average during these measurements: {min(loads)}–"
             f"{max(loads)}." + machine_note, ""]
    lines += _table(["model", "variant", "quantization (from the file's tensors)", "MB"]
                    + [f"{t} thread{'s' * (t != 1)}: median ms (rounds)"
                       + (" — oversubscribed" if t > deploy["cores"] else "") for t in threads]
                    + [f"× float32 ({threads[0]} thr)", "cold start ms"], table)
    ratios = deploy["int8_vs_float32"]
    lines += [f"### int8 vs float32 at {size} px (goal ≤ 0.5× at 1 thread)", "",
              "Paired: in every round a model's int8 process runs right after its float32 one; "
              "the ratio judged is the median over rounds of int8's median / float32's (this "
              "VM's speed drifts over tens of seconds, so two fastest-round medians taken "
              "minutes apart can pair a fast float32 with a slow int8).", ""]
    lines += _table(["model", "threads", "int8 median ms", "float32 median ms",
                     "ratio of those", "paired ratio (rounds)", "verdict"],
                    [[r["model"], r["threads"], f"{r['int8_median_ms']:.2f}",
                      f"{r['float32_median_ms']:.2f}", f"{r['ratio_median']:.2f}",
                      _paired_cell(r),
                      _verdict(r["goal_met"]) if r["goal_met"] is not None
                      else ("informational, oversubscribed" if r["oversubscribed"]
                            else "informational")] for r in ratios])
    lines += ["### What the Quantizer's rule would ship at this size", "",
              "`components.quantizer.select_variant` (objective fastest, 10% margin, no size "
              "budget) on the medians above, assuming every variant passes the Quantizer's "
              "gate:", ""]
    lines += _table(["model", "threads", "ships", "reason"],
                    [[c["model"], c["threads"], c["selected"], c["reason"]]
                     for c in deploy["selection"]])
    return lines


def _paired_cell(ratio) -> str:
    rounds = ratio.get("round_ratios")
    if not rounds:  # results from before the ratio was paired
        return ""
    return f"{ratio['ratio_paired']:.2f} ({min(rounds):.2f}–{max(rounds):.2f})"


def _median_cell(row) -> str:
    if row is None:
        return ""
    rounds = row.get("round_medians_ms") or [row["median_ms"]]  # rows timed in one round
    return f"{row['median_ms']:.2f} ({min(rounds):.2f}–{max(rounds):.2f})"


def _oversubscribed(rows, machine) -> str:
    cores = machine.get("affinity_cores") or machine.get("cpu_count") or 0
    over = sorted({r["threads"] for r in rows if cores and r["threads"] > cores})
    if not over:
        return ""
    return (f" {', '.join(map(str, over))} thread(s) on {cores} cores is oversubscribed: the "
            "threads compete for the cores, so those rows show that cost, not a speed-up.")


def _xnnpack_statement(ratios, size) -> str:
    best = min(r["ratio_median"] for r in ratios)
    worst = max(r["ratio_median"] for r in ratios)
    if all(r["ratio_median"] <= 0.5 for r in ratios):
        return f"int8 runs at {best}–{worst}× float32 at {size} px."
    return (
        f"At {size} px int8 runs at {best}–{worst}× float32: every op of a {size} px "
        "EfficientNetB0 "
        "is small, so per-op overhead (dispatch, requantization, the float input stem and "
        "(de)quantization at the edges) weighs about as much as the arithmetic int8 saves. "
        "At the deployment resolution the convolutions dominate and the ratio is the one to "
        "judge (see above)."
    )


def _sizes(latency) -> list[str]:
    if not latency:
        return []
    rows = [[s["model"], s["variant"], s["size_mb"], s["size_bytes"],
             s.get("quantizer_f1_drop_points"), s.get("quantizer_test_examples"),
             "yes" if s.get("selected") else "", _verdict(s.get("goal_met"))
             if "goal_met" in s else ""] for s in latency["sizes"]]
    return ["## Demo size: model size per variant", "",
            "MB = 10^6 bytes. Goal: int8 attention ≤ 5.5 MB. The Quantizer's own gate numbers "
            "(macro-F1 drop on the full test split, edge runner at 1 thread) are shown as a "
            "cross-check of the loss measured above.", ""] + _table(
        ["model", "variant", "MB", "bytes", "Quantizer F1 drop (pt)", "its test images",
         "selected", "size goal"], rows)


def _footprint(fp) -> list[str]:
    if not fp:
        return []
    edge, pipe = fp["edge_extra"], fp["pipeline_extra"]
    rows = [["`.[edge]` dependency closure", edge["distributions"], edge["mb"],
             "; ".join(edge["largest"][:3])],
            ["`.[pipeline]` dependency closure", pipe["distributions"], pipe["mb"],
             "; ".join(pipe["largest"][:3])]]
    for name, venv in fp["venvs"].items():
        rows.append([f"{name} folder (`{venv['prefix']}`)", "", venv["mb"], "whole folder"])
    lines = ["## Edge runner footprint", "",
             f"Edge install = {fp['edge_over_pipeline_install']:.1%} of the pipeline install "
             "(bytes the distributions install, from their RECORDs). Edge measurements ran in "
             f"`{fp['edge_python']}`.", ""]
    lines += _table(["what", "distributions", "MB", "largest"], rows)
    runs = [[label, r["size_mb"], r["cold_start_ms_best"], r["cold_start_ms_median"],
             r["images"], r["peak_rss_mb"], r["batch_images_per_s"]]
            for label, r in fp["cli_runs"].items()]
    lines += ["Cold start: a fresh `cxr-edge classify` (edge.cli) on one image (interpreter start, "
              "imports, model load and verification, one classification). Peak RSS: the "
              "child's peak resident set (VmHWM, read inside it) classifying a folder of "
              "test images.", ""]
    lines += _table(["model", "MB", "cold start best ms", "cold start median ms", "images",
                     "peak RSS MB", "images/s (whole CLI run)"], runs)
    return lines


def _training(training) -> list[str]:
    if not training:
        return []
    rows = []
    for row in training:
        t, p = row["trainer"], row["plain_fit"]
        rows.append([row["model"], row["train_examples"], row["batch_size"],
                     t.get("steady_fit_s"), t.get("steady_fit_images_per_s"),
                     p["steady_epoch_s"], p["steady_images_per_s"], row.get("ratio_fit_steps"),
                     _verdict(row.get("goal_met")), t.get("steady_epoch_s"),
                     t.get("steady_images_per_s"), row.get("ratio_steady"),
                     t["train_loop_images_per_s"],
                     t.get("end_to_end_images_per_s"), p["whole_fit_images_per_s"],
                     t["execution_wall_s"]])
    return ["## Training throughput: TFX Trainer vs plain Keras fit", "",
            "Same model (built from the Trainer's recorded config), same train split, same "
            "batch size and augmentation. Steady epochs (2 onwards) leave out graph tracing. "
            "The goal compares the fit steps: a Trainer epoch from its start to the end of its "
            "last train step (its `fit_seconds`), against the plain fit's epoch, which is only "
            "that. A whole Trainer epoch also recalibrates BatchNorm and scores the eval split "
            "(the recipe), shown beside it. The Trainer's numbers come from its own "
            "training_summary.json and MLMD, i.e. from the pipeline run that produced the model "
            "(other load on the machine then is not controlled).", ""] + _table(
        ["model", "train images", "batch", "Trainer steady fit s", "Trainer fit img/s",
         "plain epoch s", "plain img/s", "ratio", "goal ≥ 0.9", "Trainer whole epoch s",
         "Trainer whole epoch img/s", "whole-epoch ratio", "Trainer train() img/s",
         "Trainer execution img/s", "plain whole fit img/s", "Trainer execution s"], rows)


def _streaming(result) -> list[str]:
    if not result:
        return []
    rows = [[r["scale"], r.get("round", 1), r["input"], r["train_examples"],
             r["eval_examples"], r["read_s"], r["train_epoch_s"], r["images_per_s"],
             r["train_epoch_images_per_s"], r["referral_s"], r["peak_rss_mb"], r["vm_hwm_mb"],
             round(r["eval_macro_f1"], 4), " ".join(str(x) for x in r["load_average_start"])]
            for r in result["runs"]]
    growth = result["rss_growth_mb_n_to_4n"]
    medians = result.get("median_images_per_s", {})
    per_round = result.get("images_per_s_ratio_per_round", {})
    summary = [[scale, medians.get(f"{scale} streaming"), medians.get(f"{scale} memory"),
                result["images_per_s_ratio_streaming_over_memory"][scale],
                " ".join(str(x) for x in per_round.get(scale, []))] for scale in ("N", "4N")]
    return [f"## Streaming input: one epoch on N and 4N images ({result['model']}, "
            f"{result['image_size']} px)", "",
            "Each row is a fresh process (`benchmarks/stream_worker.py`): read the splits, "
            "`train()` for one epoch (fit, BatchNorm recalibration, eval scoring), fit the "
            "referral. **streaming** is the Trainer's path (TFX data accessor, decoded as read); "
            "**memory** is the reference: `load_split` decodes every image into float32 arrays "
            "first (the input path before streaming), same training code after it. images/s = "
            f"train images / (read s + epoch s). {result.get('rounds', 1)} round(s) per scale, "
            "the order alternating between rounds; the ratio is of the median images/s "
            "(one epoch's time drifts by tens of percent between identical runs on this shared "
            "machine, so a single pair does not settle it). Peak RSS (largest over the rounds) "
            f"grew by {growth['streaming']} MB (streaming) and {growth['memory']} MB (memory) "
            "from N to 4N; decoded float32 train + eval at 4N would be "
            f"{result['decoded_float32_mb_at_4n']} MB. One epoch includes tracing the train "
            "step, BatchNorm pass and predict (tens of seconds on 2 cores), the same for both "
            "inputs, so fixed costs weigh heavily at these sizes. The load average is the "
            "machine's (shared) when the run started.", ""] + _table(
        ["scale", "streaming median images/s", "memory median images/s", "ratio",
         "ratio per round"], summary) + _table(
        ["scale", "round", "input", "train images", "eval images", "read s", "epoch s",
         "images/s", "epoch images/s", "referral s", "peak RSS MB", "VmHWM MB",
         "eval macro F1", "load avg"], rows)


def _ingest(result) -> list[str]:
    if not result:
        return []
    rows = [[name, " ".join(result[name]["beam_args"]), result[name]["seconds"],
             result[name]["images_per_s"]] for name in ("single_process", "multi_process")]
    return ["## ExampleGen ingest: single vs multi-process", "",
            f"{result['images']} synthetic phantoms of {result['size_px']} px through the "
            f"ImageExampleGen executor's Beam pipeline (`benchmarks/bench_ingest.py`); wall time "
            f"includes Beam start-up. Multi-process speed-up: **{result['speedup']}×** with "
            f"{result['workers']} workers on {result['cpu_count']} cores.", ""] + _table(
        ["mode", "Beam args", "seconds", "images/s"], rows)


def _demo(result) -> list[str]:
    if not result:
        return []
    if result.get("wall_s") is None:
        return ["## `make demo` wall time", "", result.get("note", "not measured"), ""]
    text = f"**{result['wall_s'] / 60:.1f} min** ({result['wall_s']} s); source: {result['source']}"
    if result.get("log_modified_utc"):
        text += f"; log written {result['log_modified_utc']} UTC"
    if "exit_code" in result:
        text += f"; exit code {result['exit_code']}"
    return ["## `make demo` wall time", "", text + ".", ""]


def _f(value):
    return None if value is None else round(float(value), 4)


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        sys.stdout.write(render(json.load(handle)))
