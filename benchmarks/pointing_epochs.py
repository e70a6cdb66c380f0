"""Pointing game after every epoch, per class, on the demo's phantoms.

    .venv/bin/python benchmarks/pointing_epochs.py --seed 42 [--epochs 10] [--per-class 860]

Outside the pipeline, so one run takes minutes, not the demo's ten: the demo's phantoms
(`pipelines.demo.demo_split`: 64 px, split per class 70/15/15 as ingestion splits them), the
real trainer (`train.compiled_classifier` and `EvalMacroF1Selector`, the TrainConfig defaults
the demo uses), and after each epoch the export model on the test split: macro F1, and
`attention_score.pointing_game` per gated map, overall and per class. The line marked "stop"
is the epoch the demo would stop at (the first eval macro F1 ≥ its target). Seeded: the same
seed gives the same numbers on one machine.
Not part of `make bench` (the compare topic scores the pipeline's own models).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.lib import attention_score, demo_data
from edge import spec
from pipelines.configs import PipelineConfig
from pipelines.demo import DEMO_PER_CLASS, DEMO_TARGET_EVAL_MACRO_F1, demo_split


def near_misses(maps, masks, labels, class_names) -> dict:
    """Per class, the share of misses whose peak cell touches a finding cell (8-neighbours):
    a peak beside the finding, not elsewhere in the image."""
    from scipy.ndimage import binary_dilation

    _grid, peaks = attention_score.peaks_and_findings(maps, masks)
    near = {}
    for label, name in enumerate(class_names):
        misses = beside = 0
        for found, lab in zip(peaks, labels, strict=True):
            if lab != label or found is None:
                continue
            (row, col), cells = found
            if not cells[row, col]:
                misses += 1
                beside += bool(binary_dilation(cells, np.ones((3, 3)))[row, col])
        if misses:
            near[name] = round(beside / misses, 2)
    return near


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42, help="the trainer's seed")
    parser.add_argument("--epochs", type=int, default=PipelineConfig().epochs)
    parser.add_argument("--per-class", type=int, default=DEMO_PER_CLASS)
    parser.add_argument("--size", type=int, default=spec.DEMO_IMAGE_SIZE)
    parser.add_argument("--override", action="append", default=[],
                        help="TrainConfig field=JSON value, e.g. attention_border_fraction=0")
    parser.add_argument("--json", help="write the per-epoch rows here")
    parser.add_argument("--maps", help="write every epoch's test attention maps here (.npz)")
    args = parser.parse_args(argv)

    import tf_keras

    from trainer import data, metrics, train
    from trainer.config import TrainConfig

    started = time.monotonic()
    images, labels, masks, split = demo_split(args.per_class, args.size)
    print(f"generated {len(images)} phantoms in {time.monotonic() - started:.0f}s "
          f"(generator {demo_data.GENERATOR_VERSION})", flush=True)
    pixels = images[..., None].astype(np.float32)
    parts = {name: data.Split(pixels[split == name], labels[split == name])
             for name in ("train", "eval", "test")}
    test_masks = [m if m.any() else None for m in masks[split == "test"]]
    test_labels = labels[split == "test"]

    overrides = {key: json.loads(value)
                 for key, value in (item.split("=", 1) for item in args.override)}
    config = TrainConfig(model="attention", image_size=args.size, epochs=args.epochs,
                         seed=args.seed, verbose=0, **overrides)
    tf_keras.utils.set_random_seed(config.seed)
    model, classifier = train.compiled_classifier(config, len(parts["train"]))
    keys = [k for k in model.output if k.startswith("attention")]
    rows, saved_maps = [], []

    def predict_eval_labels():
        return model.predict(parts["eval"].images, batch_size=64,
                             verbose=0)[spec.PROBABILITIES_KEY].argmax(axis=1)

    class Pointing(tf_keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            outputs = model.predict(parts["test"].images, batch_size=64, verbose=0)
            row = {"epoch": epoch + 1, "eval_f1": float(logs.get("eval_macro_f1", np.nan)),
                   "test_f1": metrics.macro_f1(test_labels,
                                               outputs[spec.PROBABILITIES_KEY].argmax(1),
                                               config.num_classes)}
            for key in keys:
                row[key] = attention_score.pointing_game(outputs[key], test_masks).as_dict()
                row[key]["per_class"] = {
                    name: attention_score.pointing_game(
                        outputs[key][test_labels == c],
                        [m for m, lab in zip(test_masks, test_labels, strict=True) if lab == c]
                    ).score
                    for c, name in enumerate(config.class_names) if name != "Normal"}
                row[key]["near_miss"] = near_misses(outputs[key], test_masks, test_labels,
                                                    config.class_names)
            rows.append(row)
            saved_maps.append({k: np.asarray(outputs[k]) for k in keys})
            first = keys[0]
            per_class = " ".join(f"{name[:5]} {score:.2f}"
                                 for name, score in row[first]["per_class"].items())
            print(f"  epoch {row['epoch']}: eval {row['eval_f1']:.3f} test {row['test_f1']:.3f}"
                  f" | {first} {row[first]['score']:.3f} ({per_class})"
                  + "".join(f" | {k} {row[k]['score']:.3f}" for k in keys[1:])
                  + f" | misses beside the finding {row[first]['near_miss']}", flush=True)

    selector = train.EvalMacroF1Selector(config, classifier, parts["train"], parts["eval"],
                                         predict_eval_labels)
    dataset = data.training_dataset(parts["train"], config.batch_size, config.seed,
                                    config.augment_shift, config.augment_flip, config.num_classes)
    weights = data.class_weights(parts["train"].labels, config.num_classes)
    # The selector's on_epoch_end (BN recalibration, eval F1) runs before the pointing one.
    classifier.fit(dataset, epochs=config.epochs, class_weight=weights,
                   callbacks=[selector, Pointing()], verbose=0)
    stop = next((r for r in rows if r["eval_f1"] >= DEMO_TARGET_EVAL_MACRO_F1), None)
    chance = rows[-1][keys[0]]["chance"]
    print(f"seed {args.seed}: stop epoch {stop and stop['epoch']} "
          f"pointing {stop and round(stop[keys[0]]['score'], 3)} (chance {chance:.3f}); "
          f"{time.monotonic() - started:.0f}s")
    if args.maps:
        np.savez_compressed(args.maps, masks=masks[split == "test"], labels=test_labels,
                            **{f"{k}_epoch{i + 1}": m[k] for i, m in enumerate(saved_maps)
                               for k in keys})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
