#!/usr/bin/env bash
# Peak memory and tokens/s of fp32 training of the benchmark Transformer on three allocators, in turn, ROUNDS times:
# glibc's malloc, jemalloc with its default decay, jemalloc without decay (what `seq2seq train` uses where the
# library is installed; see seq2seq/allocator.py and docs/performance.md, "Training memory").
#   bash benchmarks/train_memory.sh DATA_RAW SPM_MODEL [UPDATES=40] [ROUNDS=2]
# DATA_RAW: a folder with train.de/train.en (benchmarks/peers/prepare_data.sh's raw copy); SPM_MODEL: the shared model.
set -euo pipefail
cd "$(dirname "$0")/.."
RAW=$1 SPM=$2 UPDATES=${3:-40} ROUNDS=${4:-2}
J=${SEQ2SEQ_JEMALLOC:-/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}
WORK=$(mktemp -d)
run() {
  local name=$1; shift
  echo "## $name, $(uptime | sed 's/.*load/load/')"
  # SEQ2SEQ_ALLOCATOR=system: the allocator is the one this script sets, not seq2seq's own choice
  env SEQ2SEQ_ALLOCATOR=system "$@" python benchmarks/ours.py train --model transformer --precision fp32 \
    --updates "$UPDATES" --warmup 10 --work "$WORK/$name" --data-raw "$RAW" --spm "$SPM" 2>&1 | grep RESULT
  grep -E "Maximum resident|User time|System time|Elapsed" "$WORK/$name/transformer.train.time"
}
for r in $(seq "$ROUNDS"); do
  run "glibc$r" SEQ2SEQ_BENCH=1
  run "jemalloc$r" LD_PRELOAD="$J"
  run "jemalloc-no-decay$r" LD_PRELOAD="$J" MALLOC_CONF=background_thread:true,dirty_decay_ms:-1,muzzy_decay_ms:-1
done
rm -rf "$WORK"
