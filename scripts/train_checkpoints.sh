#!/usr/bin/env bash
# How the shipped checkpoints were made, in order (each step is resumable; see the cards for the
# exact commands and numbers of the shipped runs). Takes about 2.5 hours on a 2-core CPU.
#   scripts/train_checkpoints.sh [lm|tef|eval|llama|images|all]
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
if [ "$step" = llama ] || [ "$step" = all ]; then
  # The second embedded model (Llama: RoPE, RMSNorm, SwiGLU, grouped-query attention; 2,048 context)
  # on the broad corpus. Shipped run: 65 min on this 2-core CPU (with a GPU lent, scripts/train_llama_gpu.sh
  # trains the llama-small preset instead). Then its causal and paper TEF heads.
  $PY -m tefviz data build --corpus broad --pack data/carry/corpus-broad
  mkdir -p runs/llama/tokenizer
  $PY -m tefviz.train.carry tokenizer data/corpus-broad runs/llama/tokenizer --vocab-size 8192
  $PY -m tefviz train lm --arch llama --preset llama-small --n-embd 256 --intermediate-size 704 \
      --batch-size 4 --warmup-steps 30 --lr 2e-3 --eval-every 100 --eval-windows 8 --save-every 25 \
      --corpus data/corpus-broad --run-dir runs/llama --max-minutes 65
  $PY -m tefviz export lm --run-dir runs/llama --out checkpoints/tefviz-llama
  $PY -m tefviz train tef --variant causal --base checkpoints/tefviz-llama --corpus data/corpus-broad \
      --run-dir runs/tef-llama-causal --batch-size 4 --block-size 512 --steps 400 --max-minutes 9 \
      --export checkpoints/tefviz-llama-tef-causal
  $PY -m tefviz train tef --variant paper --base checkpoints/tefviz-llama --corpus data/corpus-broad \
      --run-dir runs/tef-llama-paper --batch-size 4 --block-size 512 --steps 150 --max-minutes 5 \
      --export checkpoints/tefviz-llama-tef-paper
  $PY -m tefviz eval text --lm checkpoints/tefviz-llama --tef checkpoints/tefviz-llama-tef-causal \
      --tef checkpoints/tefviz-llama-tef-paper --block 2048 --windows 4 --write-cards
  $PY -m tefviz bench text checkpoints/tefviz-llama --tef checkpoints/tefviz-llama-tef-causal --tokens 2048
fi
if [ "$step" = images ] || [ "$step" = all ]; then
  # Fashion-MNIST from the Debian package dataset-fashion-mnist; every model gets 5 epochs in all.
  # About 50 min on 2 CPU cores (two runs at a time with OMP_NUM_THREADS=1 each).
  T="$PY -m tefviz train images"
  $T --tokenizer patch --epochs 2
  $T --tokenizer patch --init runs/images-patch --run-dir runs/images-patch-more --epochs 3 --lr 1e-3 --warmup-steps 20
  $T --tnt --base runs/images-patch-more --run-dir runs/images-tnt --epochs 0.5 --lr 3e-3
  $T --tokenizer svd_tef --epochs 2
  $T --tokenizer svd_tef --init runs/images-svd_tef --run-dir runs/images-svd_tef-drop --epochs 1 --lr 1e-3 \
      --warmup-steps 20 --train-t-min 0.5 --gate-l1 0.0125
  $T --tokenizer svd_tef --init runs/images-svd_tef-drop --run-dir runs/images-svd_tef-drop2b --epochs 1 \
      --lr 5e-4 --warmup-steps 20 --train-t-min 0.6 --gate-l1 0.1
  $T --tokenizer svd_tef --init runs/images-svd_tef-drop2b --run-dir runs/images-svd_tef-drop3 --epochs 1 \
      --lr 3e-4 --warmup-steps 20 --train-t-min 0.6 --gate-l1 0.1 --seed 1
  for t in fft svd_exact; do
    $T --tokenizer $t --epochs 2
    $T --tokenizer $t --init runs/images-$t --run-dir runs/images-$t-more --epochs 3 --lr 1e-3 --warmup-steps 20
  done
  $PY -m tefviz export images --run-dir runs/images-tnt --out checkpoints/tefviz-image-vit
  $PY -m tefviz export images --run-dir runs/images-svd_tef-drop3 --out checkpoints/tefviz-image-svd-tef
  $PY -m tefviz export images --run-dir runs/images-fft-more --out checkpoints/tefviz-image-fft
  $PY -m tefviz export images --run-dir runs/images-svd_exact-more --out checkpoints/tefviz-image-svd
  $PY -m tefviz eval images --write-cards
  $PY -m tefviz bench images
fi
