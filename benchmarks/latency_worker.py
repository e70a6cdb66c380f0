"""Worker: per-image latency and predictions of models on a fixed image set, in its own process.

    python benchmarks/latency_worker.py --backend tflite --threads 1 --images images.npy \
        --model a.tflite [--model b.tflite ...] [--passes 2] [--warmup 5]
    python benchmarks/latency_worker.py --backend savedmodel --threads 2 --images images.npy \
        --model SAVED_MODEL_DIR

tflite runs through the edge runner (edge.classifier → edge.runtime, LiteRT) and imports no
TensorFlow, so it can run in the edge venv; savedmodel calls the `serving_tensor` signature with
TensorFlow limited to --threads intra-op threads. One call per image (batch 1), every image once
per pass; prints JSON: latencies (ms) and the predicted class per image (first pass).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("tflite", "savedmodel"), required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    images = np.load(args.images)
    predict, runtime = (_tflite if args.backend == "tflite" else _savedmodel)(args.threads)
    results = []
    for model in args.model:
        started = time.perf_counter()
        run = predict(model)
        run(images[0])
        load_ms = (time.perf_counter() - started) * 1000
        for image in images[: args.warmup]:
            run(image)
        latencies, predictions = [], []
        for pass_index in range(args.passes):
            for image in images:
                tick = time.perf_counter()
                probabilities = run(image)
                latencies.append((time.perf_counter() - tick) * 1000)
                if pass_index == 0:
                    predictions.append(int(np.argmax(probabilities)))
        results.append({"model": model, "load_and_first_ms": round(load_ms, 2),
                        "latencies_ms": [round(v, 4) for v in latencies],
                        "predictions": predictions})
    print(json.dumps({"backend": args.backend, "runtime": runtime, "threads": args.threads,
                      "images": int(len(images)), "passes": args.passes, "results": results}))
    return 0


def _tflite(threads):
    from edge.classifier import Classifier, ClassifierOptions
    from edge.runtime import interpreter_class

    _interpreter, runtime = interpreter_class()
    if "tensorflow" in sys.modules:
        runtime += " (TensorFlow was imported in this process)"

    def load(path):
        classifier = Classifier.open(path, ClassifierOptions(threads=threads))
        return lambda image: classifier.predict(image).probabilities

    return load, runtime


def _savedmodel(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from edge import spec

    def load(path):
        signature = tf.saved_model.load(path).signatures[spec.TENSOR_SIGNATURE]

        def run(image):
            outputs = signature(**{spec.IMAGE_TENSOR_KEY: tf.constant(image[None])})
            return outputs[spec.PROBABILITIES_KEY].numpy()[0]

        return run

    return load, f"tensorflow {tf.__version__} (SavedModel, serving_tensor)"


if __name__ == "__main__":
    sys.exit(main())
