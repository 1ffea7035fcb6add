#!/usr/bin/env bash
# Set everything up and open the demo: JupyterLab on examples/quickstart.ipynb, with the demo
# images built on first use and the labeling widget ready. Extra arguments go to `jupyter lab`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
args=()
[ "$(id -u)" -eq 0 ] && args+=(--allow-root)
exec .venv/bin/jupyter lab examples/quickstart.ipynb "${args[@]}" "$@"
