"""The acquisition-shift battery against a pushed model, as a user would meet it.

    .venv/bin/python benchmarks/shift_battery.py --model demo-run/pipeline/serving/latest

Fresh phantoms (`components.lib.demo_data`, a seed the pipeline never saw) go through the device's
`edge.classifier.Classifier` as files would: first drawn at several sides and resized by the
device (the rendering itself changes, not only the pixels), then every cell of `edge/shift.py`'s
battery on phantoms drawn at the model's size. Per cell: share answered ok, accuracy of all
answers and among ok. Prints a table, writes JSON with --out. Not part of `make test`.
"""

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components.lib import demo_data
from edge import shift, spec
from edge.classifier import STATUS_OK, Classifier, ClassifierOptions

DRAWN_SIDES = (64, 96, 128, 192, 256, 384)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="pushed model directory or .tflite")
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--seed", type=int, default=9140)
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = battery(args.model, args.per_class, args.seed)
    print(f"{'cell':28s} {'ok':>6s} {'right':>6s} {'right|ok':>8s}")
    for row in rows:
        print(f"{row['cell']:28s} {row['acceptance']:6.3f} {row['accuracy_all']:6.3f} "
              f"{row['accuracy_ok']:8.3f}")
    judged = [row for row in rows if not math.isnan(row["accuracy_ok"])]
    worst = min(judged, key=lambda row: row["accuracy_ok"]) if judged else None
    if worst:
        print(f"worst cell: {worst['cell']} (accuracy among ok {worst['accuracy_ok']:.3f}, "
              f"acceptance {worst['acceptance']:.3f})")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0


def battery(model_dir: str, per_class: int, seed: int) -> list[dict]:
    classifier = Classifier.open(model_dir, ClassifierOptions(threads=1))
    size = classifier.input_size
    names = classifier.class_names
    labels = np.repeat(np.arange(len(names)), per_class)

    def phantoms(side):
        return [demo_data.render_phantom(name, index, size=side, seed=seed)
                for name in names for index in range(1, per_class + 1)]

    rows = [_row(f"drawn@{side}px", classifier, phantoms(side), labels)
            for side in DRAWN_SIDES]
    native = phantoms(size)
    for cell in shift.cells():
        shifted = [shift.shifted(gray, cell, size, seed + i) for i, gray in enumerate(native)]
        rows.append(_row(cell.name, classifier, shifted, labels))
    return rows


def _row(name, classifier, images, labels) -> dict:
    predictions = [classifier.classify(gray) for gray in images]
    ok = np.array([p.status == STATUS_OK for p in predictions])
    right = np.array([p.top_index for p in predictions]) == labels
    return {"cell": name, "images": len(images), "acceptance": float(ok.mean()),
            "accuracy_all": float(right.mean()),
            "accuracy_ok": float(right[ok].mean()) if ok.any() else math.nan,
            "reasons": {reason: sum(p.reason == reason for p in predictions)
                        for reason in {p.reason for p in predictions if p.reason}}}


if __name__ == "__main__":
    assert spec.CLASS_NAMES  # the class order the phantoms are drawn in
    sys.exit(main())
