#!/usr/bin/env bash
# Print constraints.txt for the given venv: its freeze, with the locally patched wheels and
# the packaging tools (which `pip freeze` leaves out) pinned by version.
set -euo pipefail
venv=$1
echo "# The verified package set (pip freeze of .venv, $(date -u +%F), $("$venv/bin/python" -V))."
echo "# Applied with -c by 'make setup' to both venvs; regenerate with 'make lock'."
echo "# ml-metadata and tensorflow-data-validation resolve from .wheelhouse/ (compat/glibc)."
"$venv/bin/pip" freeze --all 2>/dev/null | grep -v '^-e ' | grep -v '^cxr-edge' \
  | sed -E 's/^([A-Za-z0-9_.-]+) @ file:.*-([0-9][0-9.]*)-cp.*$/\1==\2/'
