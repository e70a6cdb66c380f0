"""Streaming input (issue 17 item 1): peak RSS and images/s of one training epoch on N and 4N
demo images, the Trainer's streaming path against the in-memory one.

Each measurement is `stream_worker.py` in a fresh process (peak RSS is the process's own):
read the splits, train one epoch with the Trainer's `train()` (fit, BatchNorm recalibration,
eval scoring), fit the referral. `streaming` reads through TFX's data accessor
(trainer.data.stream_split, what run_fn uses); `memory` is the reference: trainer.data.load_split
decodes every image into float32 arrays first, the Trainer's input path before streaming, with
the same training code after it. Data: demo phantoms rendered at the model size and written as
the ExampleGen writes them (gzipped tf.Examples), eval a quarter of train. Runs interleave
(N streaming, N memory, 4N streaming, 4N memory) so that load drifts hit both paths alike.
Goals: peak RSS at 4N ≤ 1.3 × at N (streaming); streaming images/s ≥ 0.9 × in-memory.
"""

import io
import os

import numpy as np

from benchmarks.common import BENCH_DIR, pipeline_python, run_json

RSS_GOAL = 1.3
THROUGHPUT_GOAL = 0.9
WORKER = str(BENCH_DIR / "stream_worker.py")
PATHS = ("streaming", "memory")


def measure(work_dir: str, images: int, image_size: int, model: str = "baseline") -> dict:
    """images: N train images (N/4 eval); also runs 4N."""
    runs = []
    for count in (images, 4 * images):
        examples = write_examples(os.path.join(work_dir, f"stream-{count}-{image_size}px"),
                                  count, image_size)
        for path in PATHS:
            print(f"bench: one epoch on {count} images, {path}", flush=True)
            load = [round(x, 2) for x in os.getloadavg()]
            row = run_json([pipeline_python(), WORKER, "--examples", examples, "--input", path,
                            "--image-size", str(image_size), "--model", model])
            runs.append(row | {"scale": "N" if count == images else "4N",
                               "load_average_start": load})
    by = {(r["scale"], r["input"]): r for r in runs}
    rss = {path: round(by["4N", path]["peak_rss_mb"] / by["N", path]["peak_rss_mb"], 3)
           for path in PATHS}
    growth = {path: round(by["4N", path]["peak_rss_mb"] - by["N", path]["peak_rss_mb"], 1)
              for path in PATHS}
    throughput = {scale: round(by[scale, "streaming"]["images_per_s"]
                               / by[scale, "memory"]["images_per_s"], 3)
                  for scale in ("N", "4N")}
    return {
        "n_images": images, "image_size": image_size, "model": model, "runs": runs,
        "rss_ratio_4n_over_n": rss, "rss_growth_mb_n_to_4n": growth,
        "rss_goal_met": rss["streaming"] <= RSS_GOAL,
        "images_per_s_ratio_streaming_over_memory": throughput,
        "throughput_goal_met": min(throughput.values()) >= THROUGHPUT_GOAL,
        "decoded_float32_mb_at_4n": round(
            5 * images * image_size * image_size * 4 / 2**20, 1),  # train 4N + eval N
    }


def write_examples(root: str, count: int, image_size: int) -> str:
    """Split-train (count images) and Split-eval (count/4) of demo phantoms; reused if there."""
    import tensorflow as tf
    from PIL import Image

    from components import demo_data
    from edge import spec

    done = os.path.join(root, "done")
    if os.path.isfile(done):
        return root
    for split, total, seed in (("train", count, 1), ("eval", max(4, count // 4), 2)):
        os.makedirs(os.path.join(root, f"Split-{split}"), exist_ok=True)
        path = os.path.join(root, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for index in range(total):
                label = index % len(spec.CLASS_NAMES)
                pixels = demo_data.render_phantom(spec.CLASS_NAMES[label], index,
                                                  size=image_size, seed=seed)
                buffer = io.BytesIO()
                Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="PNG")
                feature = {
                    spec.IMAGE_KEY: _bytes(buffer.getvalue()),
                    spec.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(
                        value=[label])),
                    spec.LABEL_NAME_KEY: _bytes(spec.CLASS_NAMES[label].encode()),
                }
                writer.write(tf.train.Example(features=tf.train.Features(
                    feature=feature)).SerializeToString())
    open(done, "w").close()
    return root


def _bytes(value: bytes):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
