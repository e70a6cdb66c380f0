#!/usr/bin/env bash
# Print a constraints file for the given venv: its freeze, with the locally patched wheels and
# the packaging tools (which a plain `pip freeze` leaves out) pinned by version.
#   tools/lock.sh VENV "what it holds"
set -euo pipefail
venv=$1
what=$2
echo "# The verified package set of $venv ($what): pip freeze, $(date -u +%F), $("$venv/bin/python" -V)."
echo "# Applied with -c by 'make setup'; regenerate with 'make lock'."
"$venv/bin/pip" freeze --all 2>/dev/null | grep -v '^-e ' | grep -v '^cxr-edge' \
  | sed -E 's/^([A-Za-z0-9_.-]+) @ file:.*-([0-9][0-9.]*)-cp.*$/\1==\2/'
