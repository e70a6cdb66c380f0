"""Which tf.distribute strategy trains: several workers when TF_CONFIG names them, else one.

Vertex AI, Kubeflow's TFJob and TFX's Vertex Trainer set TF_CONFIG on every worker
(`{"cluster": {"chief": [...], "worker": [...]}, "task": {"type", "index"}}`). With more than
one task in the cluster, training runs under `MultiWorkerMirroredStrategy` (synchronous
data-parallel, gradients all-reduced each step); otherwise under the default strategy, so a
single machine takes the same code path. The chief (task "chief", or worker 0 when there is no
chief) is the one that writes the model; the others write nothing.

The strategy must be created before TensorFlow runs any op in the process (collectives are
configured at start-up): run_fn creates it first.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

TF_CONFIG = "TF_CONFIG"


def cluster_tasks(environ=None) -> int:
    """How many chief/worker tasks TF_CONFIG names (0 without TF_CONFIG)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(TF_CONFIG)
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError) as err:
        raise ValueError(f"{TF_CONFIG} is not valid JSON with a 'cluster': {raw!r}") from err
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def strategy_from_environment(environ=None) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when TF_CONFIG names several tasks, else the default."""
    if cluster_tasks(environ) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and \
        _task_count(strategy) > 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the task that writes the model (always true on one machine)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def from_chief(strategy: tf.distribute.Strategy, value: float) -> float:
    """The chief's value of a number, on every worker (an all-reduce: the others add 0).

    Training decisions taken outside the train step (best epoch, early stop, time budget) must
    be identical everywhere, or one worker stops while another waits in a collective forever;
    each worker's clock differs, and its eval score could too. Every worker must call this the
    same number of times. On one machine it returns value.
    """
    if not is_multi_worker(strategy):
        return float(value)
    mine = float(value) if is_chief(strategy) else 0.0
    per_replica = strategy.run(lambda: tf.constant(mine, tf.float64))
    total = float(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))
    # One replica per task on CPU; with several (GPUs) each of the chief's adds the value.
    return total / (strategy.num_replicas_in_sync // _task_count(strategy))


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns when every worker has reached it (the others wait for the chief's export)."""
    from_chief(strategy, 0.0)


def _task_count(strategy) -> int:
    spec = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(spec.get("chief", [])) + len(spec.get("worker", []))
