"""Two worker processes on loopback train the baseline together (MultiWorkerMirroredStrategy,
set up from TF_CONFIG as Vertex AI / Kubeflow set it); the chief's SavedModel loads and scores,
the other worker writes nothing."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from edge import spec
from tests.components import evalkit
from trainer import distribution
from trainer.summary_file import read_training_summary

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = """
import json, sys
from tfx import v1 as tfx
from trainer.data import data_accessor
from trainer.run import run_fn
args = json.loads(sys.argv[1])
accessor = data_accessor(args.pop("examples"))  # as the Trainer executor builds it
run_fn(tfx.components.FnArgs(data_accessor=accessor, **args))
"""


def test_strategy_follows_tf_config():
    assert distribution.cluster_tasks({}) == 0
    one = {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
    assert distribution.cluster_tasks({"TF_CONFIG": json.dumps(one)}) == 1
    two = {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}}
    assert distribution.cluster_tasks({"TF_CONFIG": json.dumps(two)}) == 3
    single = distribution.strategy_from_environment({"TF_CONFIG": json.dumps(one)})
    assert not distribution.is_multi_worker(single) and distribution.is_chief(single)
    assert distribution.from_chief(single, 0.25) == 0.25
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribution.cluster_tasks({"TF_CONFIG": "not json"})


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_exports(tmp_path):
    examples = evalkit.write_examples(str(tmp_path / "examples"),
                                      {"train": 4, "eval": 2, "test": 2})
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    # The referral fit runs on the chief's local copy, the code path of one machine (covered by
    # test_run_fn); off here, it would double this test's time (docs/scaling.md).
    config = {"model": "baseline", "image_size": evalkit.IMAGE_SIZE, "epochs": 1,
              "batch_size": 8, "bn_recalibration_batches": 1, "verbose": 2, "referral": False}
    workers, logs = [], []
    for index in range(2):
        args = {"examples": examples,
                "train_files": [os.path.join(examples, "Split-train", "*")],
                "eval_files": [os.path.join(examples, "Split-eval", "*")],
                "serving_model_dir": str(tmp_path / f"model-{index}"),
                "model_run_dir": str(tmp_path / f"model_run-{index}"),
                "custom_config": config}
        env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": cluster,
                                         "task": {"type": "worker", "index": index}}))
        log = open(tmp_path / f"worker-{index}.log", "w")  # closed below
        logs.append(log)
        workers.append(subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(args)],
                                        cwd=REPO, env=env, stdout=log,
                                        stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 600
        for worker in workers:
            worker.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for worker in workers:
            if worker.poll() is None:  # only the processes this test started
                worker.kill()
                worker.wait()
        for log in logs:
            log.close()
    output = [(tmp_path / f"worker-{i}.log").read_text() for i in range(2)]
    for worker, text in zip(workers, output, strict=True):
        assert worker.returncode == 0, text[-4000:]

    # Both trained the same epoch in sync and took the chief's decisions.
    epoch_lines = [[line for line in text.splitlines() if line.startswith("epoch 1/")]
                   for text in output]
    assert len(epoch_lines[0]) == len(epoch_lines[1]) == 1
    assert epoch_lines[0][0].split("best")[1].split(",")[0] == \
        epoch_lines[1][0].split("best")[1].split(",")[0]
    assert "non-chief" in output[1] and "non-chief" not in output[0]

    # The chief (worker 0) exported a model that loads and scores; worker 1 wrote nothing.
    chief_dir = str(tmp_path / "model-0")
    summary = read_training_summary(chief_dir)
    assert summary["replicas_in_sync"] == 2 and summary["model"] == "baseline"
    images, _ = evalkit.read_split(examples, "test")
    outputs = tf.saved_model.load(chief_dir).signatures[spec.TENSOR_SIGNATURE](
        **{spec.IMAGE_TENSOR_KEY: tf.constant(images)})
    probabilities = outputs[spec.PROBABILITIES_KEY].numpy()
    assert probabilities.shape == (len(images), len(spec.CLASS_NAMES))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert not os.path.exists(tmp_path / "model-1")
    assert not os.path.exists(tmp_path / "model_run-1")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
