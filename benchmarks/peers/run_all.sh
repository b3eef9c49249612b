#!/usr/bin/env bash
# Runs every peer benchmark sequentially (never two at once on a small CPU box) and collects RESULT lines.
# usage: bash run_all.sh [train|decode|all] [results_file]      (env knobs: see common.sh / README.md)
#   train : trains every peer model (JoeyNMT with JOEY_TRAIN_UPDATES, default 100: it trains at <1k tok/s)
#   decode: decodes SRC_FILE with every trained model (+ CTranslate2 from the fairseq and OpenNMT-py transformers)
# Adapted from the shared peer scripts (../shared/peers/run_all.sh). Changes: train/decode phases.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); source "$HERE/common.sh"
PHASE=${1:-all}; OUT=${2:-$WORK/results.txt}; : > "$OUT"
run() { echo "### $* ($(date +%T))" >&2; bash "$HERE/$1" "${@:2}" 2>&1 | tee -a "$WORK/run_all.log" | grep '^RESULT' >> "$OUT" || echo "RESULT FAILED $*" >> "$OUT"; }
if [ "$PHASE" = train ] || [ "$PHASE" = all ]; then
  [ -d "$PEERS_ROOT/fairseq" ] && { run bench_fairseq.sh train transformer; run bench_fairseq.sh train lstm; }
  [ -d "$PEERS_ROOT/onmt" ] && { run bench_onmt.sh train transformer; run bench_onmt.sh train gru; }
  [ -d "$PEERS_ROOT/joeynmt" ] && { TRAIN_UPDATES=${JOEY_TRAIN_UPDATES:-100} run bench_joeynmt.sh train transformer
                                    TRAIN_UPDATES=${JOEY_TRAIN_UPDATES:-100} run bench_joeynmt.sh train gru; }
fi
if [ "$PHASE" = decode ] || [ "$PHASE" = all ]; then
  [ -d "$PEERS_ROOT/fairseq" ] && { run bench_fairseq.sh decode transformer; run bench_fairseq.sh decode lstm; }
  [ -d "$PEERS_ROOT/onmt" ] && { run bench_onmt.sh decode transformer; run bench_onmt.sh decode gru; }
  [ -d "$PEERS_ROOT/joeynmt" ] && { run bench_joeynmt.sh decode transformer; run bench_joeynmt.sh decode gru; }
  [ -d "$PEERS_ROOT/ctranslate2" ] && { run bench_ctranslate2.sh decode fairseq; run bench_ctranslate2.sh decode onmt; }
fi
cat "$OUT"
