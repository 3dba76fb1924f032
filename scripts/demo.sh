#!/usr/bin/env bash
# The README's first command: set up .venv, then train Div-attention and plain nnU-Net on a small synthetic dataset
# on the CPU, predict held-out cases with nnUNetv2_predict, evaluate them, and print a table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m nnunet_ext.cli.demo "$@"
