"""Streaming input: peak RSS and images/s of one training epoch on N and 4N demo images, the
Trainer's streaming path against the in-memory one.

Each measurement is `stream_worker.py` in a fresh process (peak RSS is the process's own):
read the splits, train one epoch with the Trainer's `train()` (fit, BatchNorm recalibration,
eval scoring), fit the referral. `streaming` reads through TFX's data accessor
(trainer.data.stream_split, what run_fn uses); `memory` is the reference: trainer.data.load_split
decodes every image into float32 arrays first, the Trainer's input path before streaming, with
the same training code after it. Data: demo phantoms rendered at the model size and written as
the ExampleGen writes them (gzipped tf.Examples), eval a quarter of train. The machine is
shared and one epoch's time drifts by tens of percent from run to run (measured: the same 4N
streaming epoch took 76 s and 106 s, idle), so each scale runs `rounds` pairs, the order
alternating (streaming first, then memory first) so that a drift hits both paths alike; the
ratio is of the two paths' median images/s. Peak RSS is the largest over the rounds.
Goals: peak RSS at 4N ≤ 1.3 × at N (streaming); streaming images/s ≥ 0.9 × in-memory.
"""

import io
import os
import statistics

import numpy as np

from benchmarks.common import BENCH_DIR, pipeline_python, run_json

RSS_GOAL = 1.3
THROUGHPUT_GOAL = 0.9
WORKER = str(BENCH_DIR / "stream_worker.py")
PATHS = ("streaming", "memory")


def measure(work_dir: str, images: int, image_size: int, model: str = "baseline",
            rounds: int = 3) -> dict:
    """images: N train images (N/4 eval); also runs 4N. rounds: pairs of runs per scale."""
    runs = []
    for count in (images, 4 * images):
        examples = write_examples(os.path.join(work_dir, f"stream-{count}-{image_size}px"),
                                  count, image_size)
        for round_index in range(rounds):
            order = PATHS if round_index % 2 == 0 else PATHS[::-1]
            for path in order:
                print(f"bench: one epoch on {count} images, {path} (round {round_index + 1}"
                      f"/{rounds})", flush=True)
                load = [round(x, 2) for x in os.getloadavg()]
                row = run_json([pipeline_python(), WORKER, "--examples", examples, "--input",
                                path, "--image-size", str(image_size), "--model", model])
                runs.append(row | {"scale": "N" if count == images else "4N",
                                   "round": round_index + 1, "load_average_start": load})
    return summarise(runs) | {"n_images": images, "image_size": image_size, "model": model,
                              "rounds": rounds, "runs": runs,
                              "decoded_float32_mb_at_4n": round(
                                  5 * images * image_size * image_size * 4 / 2**20, 1)}


def summarise(runs: list[dict]) -> dict:
    """Goals from the runs: per scale and path the median images/s and the largest peak RSS."""
    def of(scale, path, key):
        return [r[key] for r in runs if r["scale"] == scale and r["input"] == path]

    speed = {(scale, path): statistics.median(of(scale, path, "images_per_s"))
             for scale in ("N", "4N") for path in PATHS}
    rss = {(scale, path): max(of(scale, path, "peak_rss_mb"))
           for scale in ("N", "4N") for path in PATHS}
    rss_ratio = {path: round(rss["4N", path] / rss["N", path], 3) for path in PATHS}
    throughput = {scale: round(speed[scale, "streaming"] / speed[scale, "memory"], 3)
                  for scale in ("N", "4N")}
    paired = {scale: [round(s / m, 3) for s, m in zip(
        of(scale, "streaming", "images_per_s"), of(scale, "memory", "images_per_s"), strict=True)]
        for scale in ("N", "4N")}
    return {
        "median_images_per_s": {f"{scale} {path}": round(value, 2)
                                for (scale, path), value in speed.items()},
        "rss_ratio_4n_over_n": rss_ratio,
        "rss_growth_mb_n_to_4n": {path: round(rss["4N", path] - rss["N", path], 1)
                                  for path in PATHS},
        "rss_goal_met": rss_ratio["streaming"] <= RSS_GOAL,
        "images_per_s_ratio_streaming_over_memory": throughput,
        "images_per_s_ratio_per_round": paired,
        "throughput_goal_met": min(throughput.values()) >= THROUGHPUT_GOAL,
    }


def write_examples(root: str, count: int, image_size: int) -> str:
    """Split-train (count images) and Split-eval (count/4) of demo phantoms; reused if there."""
    import tensorflow as tf
    from PIL import Image

    from components.lib import demo_data
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
