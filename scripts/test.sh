#!/usr/bin/env bash
# The README's second command (and CI's): set up .venv, then run the whole test suite. pytest's exit code is the
# script's, so a run that collects no test (exit code 5) fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/pytest "$@"
