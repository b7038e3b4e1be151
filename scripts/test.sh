#!/usr/bin/env bash
# The test suite. pytest exits 5 when it collected no tests: that is a failure here, never a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
# On a fresh machine the tests set up first (CI runs setup.sh itself, so this is a no-op there).
[ -x .venv/bin/lexdr ] || bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
