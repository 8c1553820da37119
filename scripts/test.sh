#!/usr/bin/env bash
# The whole test suite, as the README and CI run it.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1
# Lint and format first: a style slip fails in seconds, not after the suite.
.venv/bin/ruff check . || exit 1
.venv/bin/ruff format --check . || exit 1
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "no tests were collected: that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
