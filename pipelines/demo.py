"""`cxr-pipeline demo` (`make demo`): the whole product on SYNTHETIC data, in one command.

1. writes demo phantoms (Kaggle layout, with each image's finding mask under <Class>/masks/)
   under <workdir>/data, plus a few held-out phantoms drawn with another seed under
   <workdir>/holdout;
2. runs the full pipeline via Beam (BeamDagRunner, DirectRunner multi-processing) at the demo's
   size, with the production gates unchanged;
3. classifies the held-out images with the edge runner from the pushed model — in .venv-edge,
   without TensorFlow, when that venv exists;
4. prints where the report, the pushed model and the MLMD store are.

Sized for 2 CPU cores in well under 15 minutes. `--image-size 224` and `--data-root` pointing at
the real Kaggle database are the flags that turn it into the real thing.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from components.lib import demo_data
from edge import spec
from pipelines.configs import REPO_ROOT, PipelineConfig

DEMO_PER_CLASS = 860  # → ~600 train, ~130 eval, ~130 test images per class (70/15/15)
DEMO_HOLDOUT_PER_CLASS = 2
HOLDOUT_SEED = 10_001  # never the training seed: these images were not ingested
# Phantoms are drawn at sides from the model's input to 4x it, as X-ray units deliver images
# larger than the model's input: a model trained at one drawn size learns its pixel grid
# (docs/decisions/acquisition-shift.md).
DEMO_MAX_DRAWN_SIZE = 256
# On the phantoms the demo stops training once eval macro F1 reaches this (the gates stay at
# 0.90): the last epochs would polish a model that already passes, and the demo has 10 minutes.
DEMO_TARGET_EVAL_MACRO_F1 = 0.99
# Accuracy among `ok` answers in every acquisition-shift cell (the referral's own target is
# 0.97): 400 test phantoms measure a cell to about +-0.01 (docs/decisions/acquisition-shift.md).
DEMO_SHIFT_GATE_FLOOR = 0.95


def add_demo_parser(subparsers):
    parser = subparsers.add_parser("demo", help="generate demo data, run the pipeline, classify",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=str(REPO_ROOT / "demo-run"))
    parser.add_argument("--per-class", type=int, default=DEMO_PER_CLASS)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--data-root", help="use this class-folder tree instead of phantoms")
    parser.add_argument("--runner", choices=("local", "beam"), default="beam")
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' logs here, not in "
                             "<workdir>/pipeline/pipeline.log")
    parser.set_defaults(func=run_demo)


def run_demo(args) -> int:
    from pipelines.runs import EXIT_OK, run_and_report

    started = time.monotonic()
    workdir = Path(args.workdir).resolve()
    synthetic = args.data_root is None
    data_root = workdir / "data" if synthetic else Path(args.data_root)
    if synthetic:
        _write_phantoms(data_root, args.per_class, seed=demo_data.DEFAULT_SEED)
    holdout = workdir / "holdout"
    _write_phantoms(holdout, DEMO_HOLDOUT_PER_CLASS, seed=HOLDOUT_SEED)

    config = PipelineConfig.from_env(
        data_root=str(data_root), pipeline_root=str(workdir / "pipeline"),
        image_size=args.image_size, epochs=args.epochs, synthetic_data=synthetic)
    if synthetic:
        config.train_overrides = {"target_eval_macro_f1": DEMO_TARGET_EVAL_MACRO_F1,
                                  **config.train_overrides}
        if "CXR_SHIFT_GATE_MIN_OK_ACCURACY" not in os.environ:
            config.shift_gate_min_ok_accuracy = DEMO_SHIFT_GATE_FLOOR
    code = run_and_report(config, args.runner, args.verbose)
    if code == EXIT_OK:
        code = _classify_holdout(Path(config.serving_model_dir) / spec.LATEST_LINK, holdout) or code
    minutes = (time.monotonic() - started) / 60
    print(f"cxr-pipeline demo: finished in {minutes:.1f} min (exit {code}); "
          f"everything is under {workdir}")
    return code


def _write_phantoms(root: Path, per_class: int, seed: int):
    marker = root / ".generated"
    stamp = (f"per_class={per_class} seed={seed} generator={demo_data.GENERATOR_VERSION} "
             f"max_size={DEMO_MAX_DRAWN_SIZE}")
    if marker.exists() and marker.read_text() == stamp:
        return  # same images as last time: keeps the pipeline's cache valid
    demo_data.generate(str(root), per_class=per_class, seed=seed,
                       max_size=DEMO_MAX_DRAWN_SIZE)
    marker.write_text(stamp)


def demo_split(per_class: int = DEMO_PER_CLASS, size: int | None = None):
    """The demo's phantoms in memory, split as ingestion splits them (content hash, stratified
    70/15/15 with the pipeline's seed): (uint8 images [N, s, s], labels, bool finding masks
    [N, s, s], split names). For analyses outside the pipeline (linear probes, pointing)."""
    import numpy as np

    from components.image_example_gen import ingest
    from edge import imageio, spec

    size = size or spec.DEMO_IMAGE_SIZE
    seed = PipelineConfig().seed
    images, labels, masks, split = [], [], [], []
    for label, name in enumerate(spec.CLASS_NAMES):
        cases = [demo_data.render_case(name, index, size=size, seed=demo_data.DEFAULT_SEED)
                 for index in range(1, per_class + 1)]
        hashes = [imageio.content_hash(pixels) for pixels, _ in cases]
        split_of = ingest.assign_splits([(digest, 1) for digest in hashes], seed=seed)
        for (pixels, mask), digest in zip(cases, hashes, strict=True):
            images.append(pixels)
            masks.append(mask)
            labels.append(label)
            split.append(split_of[digest])
    return np.stack(images), np.array(labels), np.stack(masks), np.array(split)


def _classify_holdout(model_dir: Path, holdout: Path) -> int:
    """Runs `cxr-edge classify` on the held-out phantoms, from .venv-edge when it exists."""
    edge_python = REPO_ROOT / ".venv-edge" / "bin" / "python"
    python = str(edge_python) if edge_python.exists() else sys.executable
    where = "the edge venv (no TensorFlow)" if edge_python.exists() else "this environment"
    # The X-rays only: masks/ holds each image's ground-truth finding, not a patient image.
    folders = sorted(str(folder) for folder in holdout.glob(f"*/{demo_data.IMAGES_FOLDER}"))
    print(f"\ncxr-edge classify on {holdout}/*/{demo_data.IMAGES_FOLDER} with {model_dir}, "
          f"in {where}:", flush=True)
    # Run from the checkout, so `-m edge` is this tree's edge/ in either venv.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([python, "-m", "edge", "classify", "--model", str(model_dir),
                           *folders, "--format", "table"], env=env, cwd=REPO_ROOT).returncode
