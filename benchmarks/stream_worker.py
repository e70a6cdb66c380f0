"""Worker: one training epoch on one examples directory, streamed or in memory; peak RSS.

    python benchmarks/stream_worker.py --examples DIR --input streaming|memory \
        --image-size 128 [--model baseline] [--batch-size 32]

Runs what run_fn runs after reading its config, in this fresh process: read the train and eval
splits (`streaming`: trainer.data.stream_split through TFX's data accessor, the Trainer's path;
`memory`: trainer.data.load_split, every image decoded into a float32 array, the path before
streaming), `trainer.train.train` for one epoch (fit, BatchNorm recalibration, eval scoring)
and the referral fit. Prints JSON: seconds per phase, images/s, peak RSS (getrusage
ru_maxrss, and /proc/self/status VmHWM).
"""

import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import trainer  # noqa: F401  (Keras 2 before TensorFlow)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", required=True)
    parser.add_argument("--input", choices=("streaming", "memory"), required=True)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model", default="baseline")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)

    from trainer import data, referral
    from trainer.config import TrainConfig
    from trainer.train import train

    config = TrainConfig(model=args.model, image_size=args.image_size, epochs=1,
                         batch_size=args.batch_size, verbose=0)
    files = {name: [os.path.join(args.examples, f"Split-{name}", "*")]
             for name in ("train", "eval")}
    started = time.perf_counter()
    if args.input == "streaming":
        factory = data.data_accessor(args.examples).tf_dataset_factory
        splits = {name: data.stream_split(factory, patterns, config.image_size,
                                          config.num_classes, config.shuffle_buffer)
                  for name, patterns in files.items()}
    else:
        splits = {name: data.load_split(patterns, config.image_size, config.num_classes)
                  for name, patterns in files.items()}
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    result = train(config, splits["train"], splits["eval"])
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    referral.fit_referral(result.model, splits["train"], splits["eval"])
    referral_s = time.perf_counter() - started
    images = len(splits["train"])
    print(json.dumps({
        "input": args.input, "model": args.model, "image_size": args.image_size,
        "batch_size": args.batch_size, "train_examples": images,
        "eval_examples": len(splits["eval"]),
        "read_s": round(read_s, 2), "train_epoch_s": round(train_s, 2),
        "referral_s": round(referral_s, 2),
        "images_per_s": round(images / (read_s + train_s), 2),
        "train_epoch_images_per_s": round(images / train_s, 2),
        "eval_macro_f1": result.summary["best_eval_macro_f1"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "vm_hwm_mb": _vm_hwm_mb(),
    }))
    return 0


def _vm_hwm_mb():
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


if __name__ == "__main__":
    sys.exit(main())
