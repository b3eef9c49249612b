#!/usr/bin/env bash
# GPU figures for docs/performance.md, in one pass (a few minutes on one GPU):
#   1. training throughput of the benchmark Transformer (benchmarks/README.md) in bf16 autocast
#      and fp32, at the peers' 4,096-token batches and at 16,384;
#   2. decoding test2016 with beam 5 and greedy (forced length 20, as the CPU table) in bf16/fp32;
#   3. the same training with 2 processes (torchrun): NCCL first; on a one-GPU machine NCCL
#      refuses two ranks on one device, and the run falls back to gloo (SEQ2SEQ_DIST_BACKEND);
#   4. optionally (KO_DATA set) the Korean digits-to-words recipe trained for KO_MINUTES.
#
# usage: DATA_RAW=DIR SPM=FILE OUT=DIR [KO_DATA=DIR KO_MINUTES=4] bash benchmarks/gpu.sh
# DATA_RAW holds Multi30k's {train,test2016}.{de,en}; SPM is the shared 8k model
# (benchmarks/peers/prepare_data.sh). Everything is written under OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${DATA_RAW:?}" "${SPM:?}" "${OUT:?}"
PY=${PY:-python3}
W=${WORK:-/tmp/gpu-bench}
UPDATES=${UPDATES:-300}
TOKENS=${TOKENS:-4096 16384}
DEVICE=${DEVICE:-cuda}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$W"
exec > >(tee -a "$OUT/gpu.log") 2>&1

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
git log -1 --format='commit %h %s' 2>/dev/null || true

echo "== 1. training throughput"
for prec in bf16 fp32; do
  for tokens in $TOKENS; do
    timeout 150 $PY benchmarks/ours.py train --model transformer --work "$W/$prec-$tokens" --data-raw "$DATA_RAW" \
      --spm "$SPM" --precision "$prec" --max-tokens "$tokens" --updates "$UPDATES" --warmup 50 --log-every 25 \
      | sed "s/^RESULT/RESULT max_tokens=$tokens/"
  done
done

echo "== 2. decoding test2016 (1,000 sentences), forced length 20"
for prec in bf16 fp32; do
  for beam in 5 1; do
    timeout 120 $PY benchmarks/ours.py decode --model transformer --work "$W/bf16-${TOKENS%% *}" --device "$DEVICE" \
      --precision "$prec" --beam "$beam" --min-len 20 --max-len 20 --src "$DATA_RAW/test2016.de" \
      --ref "$DATA_RAW/test2016.en" --tag "gpu-$prec"
  done
done

echo "== 3. two processes"
cfg="$W/bf16-${TOKENS%% *}/transformer.json"
for backend in nccl gloo; do
  rm -rf "$W/ddp-$backend"
  [ $backend = nccl ] && limit=90 || limit=180  # a refused NCCL start fails fast; never wait long on it
  SEQ2SEQ_DIST_BACKEND=$backend timeout $limit $PY -m torch.distributed.run --standalone --nproc_per_node 2 \
    -m seq2seq train "$cfg" --set "train.output_dir=$W/ddp-$backend" --set train.precision=bf16 \
    > "$W/ddp-$backend.log" 2>&1
  rc=$?
  echo "backend $backend: exit $rc"
  if [ $rc -ne 0 ]; then grep -m3 -i "error" "$W/ddp-$backend.log"; continue; fi
  $PY - "$W/ddp-$backend/train_log.jsonl" "$backend" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in rows if r.get("event") == "train" and r["step"] > 50]
print(f"RESULT ddp backend={sys.argv[2]} processes=2 updates={train[-1]['step']} "
      f"train_tok_s={sum(r['tokens_per_s'] for r in train) / len(train):.0f} loss={train[-1].get('loss')}")
PY
  cp "$W/ddp-$backend/train_log.jsonl" "$OUT/ddp-$backend.train_log.jsonl"
  break
done

if [ -n "${KO_DATA:-}" ]; then
  echo "== 4. Korean digits-to-words, ${KO_MINUTES:-4} min"
  rm -rf "$W/ko"
  timeout 420 $PY -m seq2seq train recipes/digits_to_words/gru.yaml \
    --set "data.path=$KO_DATA" --set "train.output_dir=$W/ko" --set tokenizer.model_type=char \
    --set "train.max_minutes=${KO_MINUTES:-4}" --set "train.max_tokens=${KO_TOKENS:-16384}" \
    --set train.valid_every=1000 --set train.patience=1000 --set train.max_epochs=10000 --set train.progress=false \
    > "$W/ko.log" 2>&1
  echo "ko exit $?"; tail -n 5 "$W/ko.log"
  cp "$W/ko/train_log.jsonl" "$OUT/ko.train_log.jsonl"
  tar -C "$W/ko" -cf "$OUT/ko_best.tar" best || tar -C "$W/ko" -cf "$OUT/ko_best.tar" last
fi
echo "== done"
