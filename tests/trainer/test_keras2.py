"""Keras 2 is selected for every entry point (trainer/keras2.py)."""

import os
import subprocess
import sys

import trainer  # noqa: F401


def test_tensorflow_addons_imports_against_tf_keras():
    import tensorflow_addons  # noqa: F401
    import tf_keras

    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert sys.modules["keras.src.engine"] is tf_keras.src.engine
    # The alias leaves tf_keras's own module as it was.
    assert tf_keras.src.engine.__spec__.name == "tf_keras.src.engine"


def test_a_plain_interpreter_of_the_venv_gets_keras2():
    # No import of ours and no variable set: the venv's start-up hook must do it, as it must
    # for the `tfx` CLI and Beam workers. (Where the project is not installed with `make
    # setup`, e.g. a bare PYTHONPATH checkout, there is no hook to test.)
    if "cxr_edge_keras2.pth" not in os.listdir(_site_packages()):
        import pytest
        pytest.skip("no start-up hook in this interpreter (not a `make setup` venv)")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = ("import tensorflow_addons, tensorflow as tf; "
            "assert tf.keras.layers.Dense.__module__.startswith('tf_keras'), tf.keras")
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True, env=env,
                   cwd="/", timeout=300)


def _site_packages():
    import sysconfig
    return sysconfig.get_paths()["purelib"]
