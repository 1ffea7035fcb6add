#!/usr/bin/env bash
# Set everything up and run every test: JS unit tests, Python unit tests, and the end-to-end
# tests that drive a real JupyterLab and Notebook 7 in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
chromium=${PATCHWORK_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null
fi
npm test
.venv/bin/python -m pytest tests "$@"
