#!/usr/bin/env bash
# `make test`'s runner: one pytest process per folder, in two lanes at once.
#
# One process per folder: TensorFlow keeps every graph it built for the life of a process, and
# one process for the whole suite grew to 12 GB and was OOM-killed on a 24 GB machine. Two lanes:
# the whole-pipeline tests (tests/pipelines) spend much of their time in single-threaded work
# (TFX orchestration, graph tracing, Beam in-process), so on 2 cores they overlap well with the
# rest. Lane A's output is kept in a log and printed when it ends, so the two do not interleave.
# tests/edge runs once, in the device's venv; in the pipeline venv only the tests that compare
# with TensorFlow/TFX (marker pipeline_venv).
#
# Usage: tools/run_tests.sh VENV EDGE_VENV [pytest args...]
set -u
venv=$1 edge_venv=$2
shift 2
export CXR_EDGE_PYTHON
# An unexpected skip fails the run (tests/conftest.py, tests/allowed_skips.txt).
export CXR_STRICT_SKIPS=1
CXR_EDGE_PYTHON="$(cd "$edge_venv" && pwd)/bin/python"
pipeline_pytest=(run_pytest "$venv/bin/python" "$@")
edge_pytest=(run_pytest "$edge_venv/bin/python" "$@")

# pytest exits 5 when a marker (`make test-fast`: -m "not slow") deselects every test of a
# file or folder: nothing failed, so that counts as a pass.
# Each process's wall time is printed, so a CI log says which folder grew.
run_pytest() {
  local python=$1
  shift
  local began=$SECONDS
  "$python" -m pytest -p no:cacheprovider "$@"
  local status=$?
  echo "run_tests: $(( SECONDS - began )) s for ${*: -2}"
  [ "$status" -eq 5 ] && return 0
  return "$status"
}

# Balance (measured on 2 cores, lanes side by side, fresh clone): lane A ~25 min (the end-to-end
# file 18.5, the rest of tests/pipelines ~6); lane B ~24 (tests/components 13, tests/trainer 10).

# The end-to-end file gets a process of its own: with the rest of tests/pipelines one process
# reached 19 GB (TensorFlow keeps every graph it built) and took minutes to free it at exit.
E2E_TESTS=tests/pipelines/test_pipeline_e2e.py

lane_a() {
  local status=0
  "${pipeline_pytest[@]}" "$E2E_TESTS" || status=1
  "${pipeline_pytest[@]}" tests/pipelines "--ignore=$E2E_TESTS" || status=1
  return $status
}

lane_b() {
  local status=0
  for target in tests/test_edge_install.py tests/test_layers.py tests/test_bench_deploy_ratio.py \
      tests/compat tests/components \
      tests/trainer; do
    "${pipeline_pytest[@]}" "$target" || status=1
  done
  "${pipeline_pytest[@]}" tests/edge -m pipeline_venv || status=1
  "${edge_pytest[@]}" tests/edge || status=1
  return $status
}

log=$(mktemp -t cxr-tests-lane-a.XXXXXX)
started=$SECONDS
lane_a > "$log" 2>&1 &
lane_a_pid=$!
lane_b
b=$?
wait "$lane_a_pid"
a=$?
echo "================ lane A (tests/pipelines), run alongside the above ================"
cat "$log"
rm -f "$log"
echo "make test: lane A exit $a, lane B exit $b, $(( (SECONDS - started) / 60 )) min"
[ "$a" -eq 0 ] && [ "$b" -eq 0 ]
