#!/usr/bin/env bash
# Train the embedded Llama model (tefviz-llama) on a lent GPU inside a hard wall-clock budget.
#
# Prepared on the CPU machine (once; data build needs Debian's apt-get to fetch the packages):
#   .venv/bin/python -m tefviz data build --corpus broad --pack data/carry/corpus-broad
#   .venv/bin/python -m tefviz.train.carry tokenizer data/corpus-broad data/carry/corpus-broad/tokenizer \
#       --vocab-size 8192
# Carry data/carry/corpus-broad (~11 MiB: the xz splits, manifest.json, tokenizer/) to the GPU machine and
# run from the repository root:
#   OUT=/path/to/out scripts/train_llama_gpu.sh            # BUDGET_S=390 MAX_MINUTES=5 by default
# It unpacks the corpus, trains `python3 -m tefviz train lm --arch llama --preset llama-small` in bf16
# until MAX_MINUTES or the budget's deadline (whichever first; the lr schedule decays to fit), and writes
# to $OUT/llama/ at most 6 files, each under 16 MiB: fp16 weight shards, config.json, progress.json and
# train.log. Back on the CPU machine (FILES_AT: where those files came back):
#   .venv/bin/python -m tefviz.train.carry assemble FILES_AT/llama runs/llama \
#       --tokenizer data/carry/corpus-broad/tokenizer
#   .venv/bin/python -m tefviz export lm --run-dir runs/llama --out checkpoints/tefviz-llama
# Without a GPU the same script trains on the CPU (set BUDGET_S / MAX_MINUTES to taste and, there,
# a smaller batch, e.g. EXTRA="--batch-size 8").
# Extra arguments are passed on to `train lm` (e.g. --batch-size 64 --lr 3e-3).
set -uo pipefail
START=$(date +%s)
cd "$(dirname "$0")/.."

BUDGET_S=${BUDGET_S:-390}        # the whole script, start to last file written
MAX_MINUTES=${MAX_MINUTES:-5}    # training time, if the deadline allows it
RESERVE_S=${RESERVE_S:-45}       # after training: final eval + save, packing the files, exit
PACKED=${PACKED:-data/carry/corpus-broad}
CORPUS=${CORPUS:-data/corpus-broad}
RUN=${RUN:-runs/llama}
PRESET=${PRESET:-llama-small}
OUT=${OUT:?set OUT to the folder whose files come back}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
elapsed() { echo $(( $(date +%s) - START )); }
say() { echo "[train_llama_gpu +$(elapsed)s] $*"; }

mkdir -p "$OUT/llama" "$RUN"
LOG="$OUT/llama/train.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1

say "host $(hostname 2>/dev/null || echo "?"), $($PY -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')"

# 1. the corpus: unpack the xz splits unless an identical corpus is already there
if [ ! -f "$CORPUS/train.txt" ] || ! cmp -s "$PACKED/manifest.json" "$CORPUS/manifest.json"; then
  say "unpacking $PACKED -> $CORPUS"
  $PY -c "from pathlib import Path; from tefviz.data.corpus import unpack_corpus; unpack_corpus(Path('$PACKED'), Path('$CORPUS'))" || exit 1
fi
say "corpus: $(du -sh "$CORPUS" | cut -f1)"

# 2. the tokenizer made on the CPU machine (so both machines encode alike, and no time is spent here)
if [ ! -f "$RUN/tokenizer/tokenizer.json" ] && [ -f "$PACKED/tokenizer/tokenizer.json" ]; then
  mkdir -p "$RUN/tokenizer" && cp "$PACKED"/tokenizer/* "$RUN/tokenizer/"
fi

# 3. train until MAX_MINUTES or the deadline; `timeout` is only the safety net (the run saves every
#    --save-every steps, and on its deadline it stops, evaluates and saves by itself)
FINISH_BY=$(( START + BUDGET_S - RESERVE_S ))
HARD_STOP=$(( START + BUDGET_S - 20 - $(date +%s) ))
say "training: deadline in $(( FINISH_BY - $(date +%s) )) s, hard stop in $HARD_STOP s"
timeout --signal=KILL "$HARD_STOP" $PY -m tefviz train lm --arch llama --preset "$PRESET" \
  --corpus "$CORPUS" --run-dir "$RUN" --max-minutes "$MAX_MINUTES" --finish-by "$FINISH_BY" ${EXTRA:-} "$@"
rc=$?
say "train lm exited with $rc"

# 4. what comes back: fp16 weight shards + config + progress (+ this log)
if [ -f "$RUN/state/model.safetensors" ]; then
  $PY -m tefviz.train.carry pack "$RUN" "$OUT/llama" && say "packed:" && ls -la "$OUT/llama"
  $PY -c "import json; p = json.load(open('$RUN/state/progress.json')); print('step', p['step'], 'tokens', p['tokens_seen'], 'minutes', round(p['elapsed_s'] / 60, 2)); print(p['log'][-3:])"
else
  say "no saved state: nothing to bring back"
  exit 1
fi
say "done"
exit $rc
