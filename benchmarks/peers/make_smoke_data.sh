#!/usr/bin/env bash
# Adapted from the shared peer scripts (../shared/peers/make_smoke_data.sh). Changes: output folder
# overridable (SMOKE_DATA), usage line for the train/decode phases.
# Tiny copy of the prepared data (test set cut to 40 sentences) for quick script smoke tests:
#   DATA_SPM=/tmp/peers/data_smoke WORK=/tmp/peers/work_smoke TRAIN_UPDATES=12 WARMUP_UPDATES=4 bash bench_X.sh train MODEL
#   DATA_SPM=/tmp/peers/data_smoke WORK=/tmp/peers/work_smoke bash bench_X.sh decode MODEL
set -euo pipefail
source "$(dirname "$0")/common.sh"
S=${SMOKE_DATA:-$PEERS_ROOT/data_smoke}; rm -rf "$S"; cp -r "$PEERS_ROOT/data" "$S"
for l in de en; do head -40 "$PEERS_ROOT/data/test2016.$l" > "$S/test2016.$l"; head -40 "$PEERS_ROOT/data/raw/test2016.$l" > "$S/raw/test2016.$l"; done
echo "$S"
