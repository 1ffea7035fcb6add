#!/usr/bin/env bash
# Set everything up and run every test: JS unit tests, Python unit tests, and the end-to-end
# tests that drive a real JupyterLab and Notebook 7 in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# System packages the tests need: Chromium (e2e) and a PostgreSQL server (team journal tests).
chromium=${PATCHWORK_CHROMIUM:-/usr/bin/chromium}
missing=()
[ -x "$chromium" ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null \
  || [ -n "${PATCHWORK_PG_BIN:-}" ] || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    "${missing[@]}" >/dev/null
fi
npm test
.venv/bin/python -m pytest tests "$@"
