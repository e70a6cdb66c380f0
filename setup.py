"""cxr-edge: chest X-ray triage — a TFX pipeline that trains, gates and quantizes models for an
edge runner that needs only numpy, Pillow and LiteRT.

Extras (exact versions of the verified set are in constraints.txt; `make setup` applies them):
  pipeline  the TFX 1.21 stack (TensorFlow 2.21, tf-keras, tfmot, tensorflow-addons, Beam)
  edge      the device runtime: numpy, Pillow, ai-edge-litert — never TensorFlow
  dicom     DICOM input for the edge runner and ingestion (pydicom)
  dicom-net the DICOM node: receive over the network, send SR/SC to the PACS (pynetdicom,
            highdicom: pure-Python wheels, no compiler on a Pi)
  android   MediaPipe's metadata writer for `cxr-edge export-android` (edge venv only:
            it needs absl-py 2.x, which TFX 1.21 forbids)
  signing   Ed25519 model signatures: `cxr-edge keygen`/`sign`/`--trusted-key` and the pusher's
            CXR_SIGNING_KEY (cryptography; aarch64 wheels, no compiler)
  serve     `cxr-edge serve`, the clinic's web page and JSON API (Starlette + uvicorn +
            python-multipart: pure-Python wheels, nothing to compile on a Pi)
  dev       test and lint tools
"""

from setuptools import find_packages, setup

EDGE = [
    "numpy>=1.24",
    "Pillow>=10.0",
    # LiteRT's wheels cover manylinux x86_64 and aarch64 (Raspberry Pi OS 64-bit), macOS arm64.
    "ai-edge-litert>=2.3.0",
]
DICOM = ["pydicom>=3.0"]
# The DICOM node (`cxr-edge dicom-listen`, `serve --dicom-port`): pure-Python wheels.
DICOM_NET = ["pynetdicom>=3.0", "highdicom>=0.28"]
PIPELINE = [
    # The only TFX that installs on Python 3.11; it pins TF 2.21, TFMA 0.52, TFDV/MLMD 1.21.
    # ml-metadata and tensorflow-data-validation come from the wheelhouse that
    # compat/glibc/patch_wheels.py prepares on glibc < 2.39 (see BUILD_NOTES.md).
    "tfx[kfp]==1.21.0",  # kfp: compile for Kubeflow Pipelines / Vertex (KubeflowV2DagRunner)
    "tensorflow==2.21.*",
    # Keras 2: tfmot and tensorflow-addons need it (TF_USE_LEGACY_KERAS=1, set in trainer/).
    "tf-keras==2.21.*",
    "tensorflow-model-optimization==0.8.1",
    # End-of-life, built for TF < 2.16; works under tf_keras with trainer/tfa_compat.py.
    "tensorflow-addons==0.23.0",
    "apache-beam[gcp]>=2.59",
    "matplotlib>=3.8",
    "scikit-learn>=1.3",
    # The TFX Trainer packages its module file into a wheel at run time.
    "wheel",
    "setuptools",
]
ANDROID = ["mediapipe==1.2.2"]
# Signing pushed models and verifying them on the device: off unless a key is given.
SIGNING = ["cryptography>=42"]
# The web shell of `cxr-edge serve` (edge/serve/ only). uvicorn without its [standard] extra:
# h11 instead of httptools/uvloop, so no compiled code.
SERVE = ["starlette>=0.40", "uvicorn>=0.30", "python-multipart>=0.0.18"]
# selenium drives Debian's chromium + chromium-driver in the browser test of `serve`.
DEV = ["pytest>=8", "pytest-timeout>=2.3", "ruff>=0.6", "pydicom-data>=1.0", "selenium>=4.20"]

setup(
    name="cxr-edge",
    version="0.1.0",
    description="Chest X-ray triage: TFX pipeline to TFLite edge runner",
    python_requires=">=3.10,<3.12",
    packages=find_packages(include=["edge", "edge.*", "components", "components.*",
                                    "trainer", "trainer.*", "pipelines", "pipelines.*"]),
    include_package_data=True,
    package_data={"components": ["templates/*"], "edge": ["data/*"],
                  "edge.serve": ["static/*"]},
    install_requires=[],
    extras_require={
        "edge": EDGE,
        "dicom": DICOM,
        "dicom-net": DICOM + DICOM_NET,
        # The pipeline venv runs the edge tests too, so it carries every edge-side extra.
        "pipeline": PIPELINE + EDGE + DICOM + DICOM_NET + SIGNING + SERVE,
        "android": ANDROID,
        "signing": SIGNING,
        "serve": SERVE,
        "dev": DEV,
    },
    entry_points={
        "console_scripts": [
            "cxr-edge=edge.cli:main",
            "cxr-pipeline=pipelines.cli:main",
        ],
    },
)
