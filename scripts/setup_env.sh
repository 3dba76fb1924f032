#!/usr/bin/env bash
# Creates the project's environment in .venv (once) and installs the tested stack and this package into it.
# torch and torchvision are installed in the same pip command as nnunetv2 (see README "Install"). The sed only
# drops pip's notes about this machine's missing local package indexes; pipefail keeps pip's exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv .venv
fi
echo "[setup] installing torch 2.14.1, torchvision 0.29.1, nnU-Net 2.8.1 and nnunet_ext into .venv (first time: ~4 min)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements/tested.txt \
    "torch==2.14.1" "torchvision==0.29.1" "nnunetv2==2.8.1" ".[test]" 2>&1 | sed '/^WARNING: Location/d'
# pip skips a local package whose version is already installed: always put the current sources in place (and
# build them afresh: setuptools' build/ folder would otherwise carry modules that were since moved or deleted)
rm -rf build nnunet_ext.egg-info
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall . 2>&1 \
    | sed '/^WARNING: Location/d'
.venv/bin/python -c "import torch, torchvision, nnunetv2, nnunet_ext.trainers; print('[setup] ready: torch', torch.__version__, '| torchvision', torchvision.__version__)"
