#!/usr/bin/env bash
# Create .venv (if missing) and install patchwork_widget with one extra, e.g. `all` or `test`.
# The editable install runs `npm install` and `npm run build` (the JS bundle) through
# hatch-jupyter-builder, so Python 3.10+, Node 18+ and npm are all a fresh machine needs.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=${1:-all}
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extra}]"
