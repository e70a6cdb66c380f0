"""`make bench`: every benchmark in one run, numbers side by side, goals beside them.

    .venv/bin/python benchmarks/run_all.py                 # demo sizing: 64 px, DEMO_PER_CLASS
    .venv/bin/python benchmarks/run_all.py --quick         # tiny data, few runs (smoke test)
    .venv/bin/python benchmarks/run_all.py --image-size 224   # train at the real input size
    .venv/bin/python benchmarks/run_all.py --skip latency --skip footprint --skip training \
        --skip ingest --skip demo --skip serve --update    # re-measure only the 224 px latency

0. edge latency at the deployment resolution (224 px, untrained real models): every variant at
   1, 2 and 4 threads, size, int8/float32 ratio, cold start, the Quantizer's pick
   (deploy_latency.py);
1. trains the baseline and attention models with the real pipeline on demo phantoms in the
   work dir (TFX's cache reuses an earlier run), and takes their TFLite variants;
2. edge latency (1, 2 and 4 threads) of float32/float16/dynamic/int8 against the SavedModel,
   model sizes, macro-F1 loss per variant, whether the Quantizer shipped the fastest passing
   variant (edge_latency.py);
3. edge footprint: installed size, cold start, peak RSS on 100 images (footprint.py);
4. training throughput, TFX Trainer vs plain Keras fit (training.py);
5. ExampleGen images/s, single vs multi-process (bench_ingest.py);
6. `make demo` wall time (demo_time.py);
7. `cxr-edge serve` throughput and p95 latency for N concurrent clients, and the install size
   the `serve` extra adds (serve_load.py);
8. streaming input: peak RSS and images/s of one training epoch on N and 4N demo images, the
   Trainer's streaming path vs in-memory arrays (streaming.py);
9. attention vs baseline vs Siamese on the same demo data: macro F1, COVID recall, pointing
   game on the phantoms' finding masks, the shipped variant's size and latency (compare.py).
Writes benchmarks/results.json and benchmarks/RESULTS.md (--out-dir to change). A topic that
fails is recorded with its error and the others go on. Not part of `make test`.
"""

import argparse
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import trainer  # noqa: F401  (Keras 2 before TensorFlow is imported)
from benchmarks import (
    compare,
    demo_time,
    deploy_latency,
    edge_latency,
    footprint,
    ingest,
    machine,
    models,
    report,
    serve_load,
    streaming,
    test_images,
    training,
)
from benchmarks.common import BENCH_DIR, REPO_ROOT, edge_python
from pipelines.demo import DEMO_PER_CLASS

TOPICS = ("deploy", "latency", "footprint", "training", "ingest", "demo", "serve", "streaming",
          "compare")
NEEDS_MODELS = {"latency", "footprint", "training", "compare"}  # topics using the trained models


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    _apply_sizing(args)
    started = time.monotonic()
    python, where = edge_python(args.edge_python)
    results = {
        "mode": "quick (tiny data, few runs: smoke test, not the numbers to quote)"
        if args.quick else "full",
        "settings": {k: v for k, v in vars(args).items() if k != "skip"},
        "machine": machine.describe(python) | {"edge_interpreter": where},
        "errors": {},
    }
    if "deploy" not in args.skip:
        results["deploy"] = _topic(results, "deploy", lambda: deploy_latency.measure(
            args.work_dir, python, args.deploy_size, args.deploy_threads, args.deploy_rounds,
            runs=args.deploy_runs))
    bench = None
    if NEEDS_MODELS - set(args.skip):
        bench = _topic(results, "models", lambda: models.obtain_models(
            args.work_dir, args.image_size, args.per_class, args.epochs,
            run_pipeline=not args.no_pipeline))
    if bench is not None:
        results["models"] = _models_summary(bench)
        images = _topic(results, "test_images", lambda: test_images.prepare(
            bench.examples_uri, args.image_size, os.path.join(args.work_dir, "test-images"),
            args.max_images))
        if images and "latency" not in args.skip:
            results["latency"] = _topic(results, "latency", lambda: edge_latency.measure(
                bench, images, python, args.threads, args.passes, rounds=args.rounds))
        if images and "footprint" not in args.skip:
            results["footprint"] = _topic(results, "footprint", lambda: footprint.measure(
                python, _footprint_models(bench), images["png_dir"], args.cold_runs,
                args.rss_images))
        if "compare" not in args.skip:
            results["compare"] = _topic(results, "compare", lambda: compare.measure(bench))
        if "training" not in args.skip:
            results["training"] = _topic(results, "training", lambda: training.measure(
                bench, args.fit_epochs))
    if "ingest" not in args.skip:
        results["ingest"] = _topic(results, "ingest", lambda: ingest.measure(
            args.ingest_images, args.ingest_size))
    if "demo" not in args.skip:
        results["demo"] = _topic(results, "demo", lambda: demo_time.measure(
            args.demo_log, args.demo_workdir, args.time_demo))
    if "serve" not in args.skip:
        results["serve"] = _topic(results, "serve", lambda: serve_load.measure(
            python, _serve_model(args, bench), args.serve_clients, args.serve_requests,
            work_dir=args.work_dir))
    if "streaming" not in args.skip:
        results["streaming"] = _topic(results, "streaming", lambda: streaming.measure(
            args.work_dir, args.stream_images, args.stream_size, rounds=args.stream_rounds))
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["bench_wall_s"] = round(time.monotonic() - started, 1)

    os.makedirs(args.out_dir, exist_ok=True)
    json_path = os.path.join(args.out_dir, "results.json")
    if args.update and os.path.isfile(json_path):
        with open(json_path) as handle:
            results = _merge(json.load(handle), results)
    with open(json_path, "w") as handle:
        json.dump(results, handle, indent=2, default=str)
    md_path = os.path.join(args.out_dir, "RESULTS.md")
    with open(md_path, "w") as handle:
        handle.write(report.render(results))
    print(f"bench: wrote {md_path} and {json_path} in {(time.monotonic() - started) / 60:.1f} min"
          + (f"; failed topics: {sorted(results['errors'])}" if results["errors"] else ""))
    return 1 if results["errors"] else 0


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny data, 2 epochs, few images and runs (smoke test)")
    parser.add_argument("--image-size", type=int, default=64,
                        help="model input size (64: the demo's; 224: the real setting)")
    parser.add_argument("--per-class", type=int, help=f"phantoms per class ({DEMO_PER_CLASS})")
    parser.add_argument("--epochs", type=int, help="pipeline training epochs (its default)")
    parser.add_argument("--work-dir", help="pipeline root, data, converted models "
                                           "(default benchmarks/work[-quick])")
    parser.add_argument("--no-pipeline", action="store_true",
                        help="do not run the pipeline; use what the work dir's store holds")
    parser.add_argument("--edge-python", help="edge interpreter (default .venv-edge/bin/python)")
    parser.add_argument("--threads", default="1,2,4", help="interpreter threads to compare")
    parser.add_argument("--deploy-size", type=int, default=224,
                        help="deployment resolution of the untrained-model latency topic (224)")
    parser.add_argument("--deploy-threads", default="1,2,4", help="its thread counts")
    parser.add_argument("--deploy-rounds", type=int, help="its interleaved rounds (5)")
    parser.add_argument("--deploy-runs", type=int, help="its timed runs per round (30)")
    parser.add_argument("--passes", type=int,
                        help="demo-size latency: timed passes over the test images per process (1)")
    parser.add_argument("--rounds", type=int,
                        help="demo-size latency: interleaved rounds, the fastest counts (5)")
    parser.add_argument("--max-images", type=int, help="cap on test images (all)")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--rss-images", type=int, default=100)
    parser.add_argument("--fit-epochs", type=int, help="plain Keras fit epochs (3)")
    parser.add_argument("--ingest-images", type=int, help="ExampleGen benchmark images (1000)")
    parser.add_argument("--ingest-size", type=int, help="their side in px (256)")
    parser.add_argument("--demo-log", help="a `make demo` log to read the wall time from")
    parser.add_argument("--demo-workdir", default=str(REPO_ROOT / "demo-run"),
                        help="the demo's workdir (its MLMD store, or where --time-demo runs)")
    parser.add_argument("--time-demo", action="store_true",
                        help="run `cxr-pipeline demo` and time it (~15 min)")
    parser.add_argument("--serve-model", help="model `cxr-edge serve` runs in the serve topic "
                        "(default: the pushed model, else the 224 px attention int8)")
    parser.add_argument("--serve-clients", default="1,4,16,50", help="concurrent clients")
    parser.add_argument("--serve-requests", type=int, help="uploads per round (100)")
    parser.add_argument("--stream-images", type=int,
                        help="streaming topic: N train images (also 4N; 400)")
    parser.add_argument("--stream-size", type=int, help="streaming topic: image side (128)")
    parser.add_argument("--stream-rounds", type=int,
                        help="streaming topic: pairs of runs per scale, order alternating (3)")
    parser.add_argument("--skip", action="append", default=[], choices=TOPICS)
    parser.add_argument("--update", action="store_true",
                        help="keep the other topics of the existing results.json and replace "
                             "only those measured now (e.g. one re-measured at low load)")
    parser.add_argument("--out-dir", help="where results.json and RESULTS.md go "
                                          "(default benchmarks/)")
    return parser


def _apply_sizing(args):
    quick = args.quick
    defaults = {
        "per_class": 40 if quick else DEMO_PER_CLASS,
        "epochs": 2 if quick else None,
        "work_dir": str(BENCH_DIR / ("work-quick" if quick else "work")),
        "passes": 1,
        "rounds": 1 if quick else 5,
        "max_images": 40 if quick else None,
        "fit_epochs": 2 if quick else 3,
        "ingest_images": 100 if quick else 1000,
        "ingest_size": 64 if quick else 256,
        "deploy_rounds": 1 if quick else 5,
        "deploy_runs": 5 if quick else 30,
        "serve_requests": 20 if quick else 100,
        "stream_images": 40 if quick else 400,
        "stream_size": 64 if quick else 128,
        "stream_rounds": 1 if quick else 3,
        "out_dir": str(BENCH_DIR),
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if quick:
        args.cold_runs = min(args.cold_runs, 2)
    args.threads = tuple(int(t) for t in str(args.threads).split(",") if t.strip())
    args.deploy_threads = tuple(int(t) for t in str(args.deploy_threads).split(",")
                                if t.strip())
    args.serve_clients = tuple(int(n) for n in str(args.serve_clients).split(",") if n.strip())
    args.work_dir = os.path.abspath(args.work_dir)


def _topic(results, name, measure):
    """Runs one topic; a failure is recorded (with its traceback's tail) and the run goes on.
    When and under what load each topic ran is recorded with it (the machine is shared)."""
    started, load = time.monotonic(), [round(x, 2) for x in os.getloadavg()]
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    try:
        return measure()
    except Exception as err:
        traceback.print_exc()
        results["errors"][name] = f"{type(err).__name__}: {err}"
        return None
    finally:
        results.setdefault("measured", {})[name] = {
            "date_utc": when, "wall_s": round(time.monotonic() - started, 1),
            "load_average_start": load,
            "load_average_end": [round(x, 2) for x in os.getloadavg()]}


def _merge(previous: dict, update: dict) -> dict:
    """--update: the topics measured now replace theirs whole; the others stay as they were."""
    measured = sorted(update.get("measured", {}))
    merged = dict(previous)
    for name in measured:
        merged[name] = update.get(name)
        merged.setdefault("measured", {})[name] = update["measured"][name]
        merged.setdefault("errors", {}).pop(name, None)
        if name in update["errors"]:
            merged["errors"][name] = update["errors"][name]
    merged.setdefault("updates", []).append({
        "date_utc": update["machine"]["date_utc"], "topics": measured,
        "load_average_at_start": update["machine"]["load_average_at_start"],
        "load_average_at_end": update["machine"]["load_average_at_end"],
        "git_commit": update["machine"].get("git_commit"),
        "git_uncommitted_py": update["machine"].get("git_uncommitted_py"),
        "wall_s": update["bench_wall_s"], "settings": update["settings"]})
    return merged


def _serve_model(args, bench) -> str:
    """What a clinic would serve: the pushed model; else the deploy topic's 224 px int8."""
    if args.serve_model:
        return os.path.abspath(args.serve_model)
    if bench is not None and bench.pushed_dir and os.path.isdir(bench.pushed_dir):
        return bench.pushed_dir
    fallback = os.path.join(args.work_dir, f"deploy-{args.deploy_size}px", "attention",
                            "int8.tflite")
    if os.path.isfile(fallback):
        return fallback
    raise FileNotFoundError("no model to serve: no pushed model and no deploy-topic int8 file; "
                            "give --serve-model")


def _footprint_models(bench) -> dict:
    paths = {}
    if bench.pushed_dir and os.path.isdir(bench.pushed_dir):
        paths["pushed model dir (manifest verified)"] = bench.pushed_dir
    for kind, model in bench.models.items():
        for variant in ("float32", "int8"):
            path = model.tflite(variant)
            if path and os.path.isfile(path):
                paths[f"{kind} {variant}"] = path
    return paths


def _models_summary(bench) -> dict:
    summary = {
        "pipeline_root": bench.config.pipeline_root,
        "data_root": bench.config.data_root,
        "image_size": bench.config.image_size,
        "pipeline_seconds_this_invocation": bench.pipeline_seconds,
        "pipeline_error": bench.pipeline_error,
        "latest_run_states": bench.states,
        "pushed_dir": bench.pushed_dir,
        "models": {},
    }
    for kind, model in bench.models.items():
        recorded = model.training_summary
        summary["models"][kind] = {
            "saved_model_dir": model.saved_model_dir,
            "epochs": recorded.get("epochs"),
            "best_eval_macro_f1": recorded.get("best_eval_macro_f1"),
            "train_examples": recorded.get("train_examples"),
            "trainer_execution_wall_s": model.trainer_wall_s,
            "variants_source": model.variants_source,
            "quantizer_selected": model.variants.get("selected"),
            "reference_macro_f1": model.variants.get("reference", {}).get("macro_f1"),
        }
    return summary


if __name__ == "__main__":
    sys.exit(main())
