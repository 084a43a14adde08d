#!/usr/bin/env bash
# How the shipped checkpoints were made, in order (each step is resumable; see the cards for the
# exact commands and numbers of the shipped runs). Takes about 2.5 hours on a 2-core CPU.
#   scripts/train_checkpoints.sh [lm|tef|eval|all]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
step=${1:-all}

if [ "$step" = lm ] || [ "$step" = all ]; then
  $PY -m tefviz data build
  $PY -m tefviz train lm --preset small --run-dir runs/lm --max-minutes 100
  $PY -m tefviz export lm --run-dir runs/lm --out checkpoints/tefviz-lm
  $PY -m tefviz bench lm checkpoints/tefviz-lm
fi
if [ "$step" = tef ] || [ "$step" = all ]; then
  $PY -m tefviz train tef --variant causal --base checkpoints/tefviz-lm --run-dir runs/tef-causal \
      --batch-size 4 --block-size 256 --steps 600 --max-minutes 15 --export checkpoints/tefviz-lm-tef-causal
  $PY -m tefviz train tef --variant paper --base checkpoints/tefviz-lm --run-dir runs/tef-paper \
      --batch-size 4 --block-size 256 --steps 300 --max-minutes 8 --export checkpoints/tefviz-lm-tef-paper
fi
if [ "$step" = eval ] || [ "$step" = all ]; then
  $PY -m tefviz eval text --lm checkpoints/tefviz-lm --tef checkpoints/tefviz-lm-tef-causal \
      --tef checkpoints/tefviz-lm-tef-paper --write-cards
  $PY -m tefviz bench text checkpoints/tefviz-lm --tef checkpoints/tefviz-lm-tef-causal \
      --tef checkpoints/tefviz-lm-tef-paper
fi
