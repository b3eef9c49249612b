#!/usr/bin/env bash
# usage: bench_fairseq.sh train|decode transformer|lstm     (fairseq has no GRU; LSTM+attention is used)
# Adapted from the shared peer scripts (../shared/peers/bench_fairseq.sh). Changes: separate train and decode
# phases (decode reuses $WORK/fairseq/MODEL/ckpt/checkpoint_last.pt); decoding knobs BEAM, MIN_LEN, MAX_LEN
# (--min-len/--max-len-a 0/--max-len-b), DECODE_BATCH and SRC_FILE (pieces; binarized with fairseq-preprocess into
# the decode folder, with a copy of the source as dummy target); piece-level output (no --remove-bpe) so the generated
# pieces are counted; one RESULT line per phase (decode_tok_s, out_len_min/max); LOG_INTERVAL knob.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); source "$HERE/common.sh"; source "$HERE/score.sh"
PHASE=${1:?usage: bench_fairseq.sh train|decode transformer|lstm}; MODEL=${2:-transformer}
V=$PEERS_ROOT/fairseq; export PATH=$V/bin:$PATH
W=$WORK/fairseq/$MODEL
PEER=fairseq-0.12.2
case $MODEL in
  transformer) ARCH=(--arch transformer --encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 256 --decoder-embed-dim 256
        --encoder-ffn-embed-dim 1024 --decoder-ffn-embed-dim 1024 --encoder-attention-heads 4 --decoder-attention-heads 4
        --encoder-normalize-before --decoder-normalize-before --share-all-embeddings
        --dropout 0.1 --attention-dropout 0.1 --activation-dropout 0.1) ;;
  lstm) ARCH=(--arch lstm --encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 256 --decoder-embed-dim 256
        --encoder-hidden-size 256 --decoder-hidden-size 256 --decoder-out-embed-dim 256 --decoder-attention 1
        --share-all-embeddings --dropout 0.1) ;;
  *) echo "unknown model $MODEL (transformer|lstm)"; exit 2 ;;
esac

if [ "$PHASE" = train ]; then
  rm -rf "$W"; mkdir -p "$W"
  BIN=$WORK/fairseq/bin
  if [ ! -f "$BIN/.done" ]; then
    fairseq-preprocess --source-lang de --target-lang en --trainpref "$DATA_SPM/train" --validpref "$DATA_SPM/val" \
      --testpref "$DATA_SPM/test2016" --srcdict "$DATA_SPM/dict.txt" --tgtdict "$DATA_SPM/dict.txt" \
      --destdir "$BIN" --workers 2 > "$WORK/fairseq/preprocess.log" 2>&1
    touch "$BIN/.done"
  fi
  echo "== fairseq $MODEL: training $TRAIN_UPDATES updates" >&2
  /usr/bin/time -v -o "$W/train.time" fairseq-train "$BIN" "${ARCH[@]}" --cpu --task translation --source-lang de --target-lang en \
    --optimizer adam --adam-betas '(0.9,0.98)' --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 100 --warmup-init-lr 1e-7 \
    --clip-norm 0.0 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 --max-tokens "$MAX_TOKENS" \
    --max-update "$TRAIN_UPDATES" --log-format simple --log-interval "$LOG_INTERVAL" --disable-validation \
    --save-dir "$W/ckpt" --no-epoch-checkpoints --num-workers 0 --seed 1 > "$W/train.log" 2>&1
  # peer-logged throughput: fairseq 'wps' (target tokens/s) of train_inner lines after warm-up;
  # own: target tokens (wpb*updates) / wall-clock delta between the warm-up log line and the last one.
  read -r TOKS_PEER TOKS_WALL < <(train_rates fairseq "$W/train.log")
  UPD=$(grep -o "num_updates=[0-9]*" "$W/train.log" | tail -1 | cut -d= -f2)
  echo "RESULT peer=$PEER model=$MODEL phase=train train_tok_s=$TOKS_PEER train_tok_s_wall=$TOKS_WALL updates=${UPD:-$TRAIN_UPDATES} train_wall_s=$(wall_s "$W/train.time") train_peak_rss_mb=$(peak_rss_mb "$W/train.time") max_tokens=$MAX_TOKENS threads=$OMP_NUM_THREADS" | tee "$W/result_train.txt"

elif [ "$PHASE" = decode ]; then
  check_len_knobs
  CKPT=$W/ckpt/checkpoint_last.pt
  test -f "$CKPT" || { echo "no trained model $CKPT: run 'bench_fairseq.sh train $MODEL' first (same WORK)" >&2; exit 2; }
  D=$W/decode/$(decode_tag); rm -rf "$D"; mkdir -p "$D"
  # fairseq-generate reads binarized data: the input pieces as source and (unused) a copy as target
  cp "$SRC_FILE" "$D/input.de"; cp "$SRC_FILE" "$D/input.en"
  fairseq-preprocess --source-lang de --target-lang en --testpref "$D/input" --srcdict "$DATA_SPM/dict.txt" \
    --tgtdict "$DATA_SPM/dict.txt" --destdir "$D/bin" --workers 1 > "$D/preprocess.log" 2>&1
  echo "== fairseq $MODEL: decoding $(basename "$SRC_FILE") beam $BEAM len $MIN_LEN-$MAX_LEN" >&2
  # beam 1 == greedy (fairseq has no separate greedy search; beam search with one hypothesis takes the argmax)
  # --min-len L: EOS forbidden for the first L steps; --max-len-a 0 --max-len-b L: EOS forced after L tokens.
  /usr/bin/time -v -o "$D/decode.time" fairseq-generate "$D/bin" --cpu --path "$CKPT" --gen-subset test \
    --source-lang de --target-lang en --beam "$BEAM" --batch-size "$DECODE_BATCH" \
    --min-len "$MIN_LEN" --max-len-a 0 --max-len-b "$MAX_LEN" > "$D/gen.out" 2> "$D/decode.log"
  grep '^H-' "$D/gen.out" | sed 's/^H-//' | sort -n -k1,1 | cut -f3 > "$D/pred.sp"
  spm_detok "$D/pred.sp" > "$D/hyp.txt"
  # fairseq's own timer (sum over batches of the search itself): "Translated N sentences (T tokens) in Xs (S sentences/s, R tokens/s)"
  # X is printed with 1 decimal only, so the time is taken as T/R (T counts EOS, so it is not our token count).
  TT=$(grep -o "Translated .*" "$D/decode.log" | tr -d , | sed -E 's/.*\(([0-9]+) tokens\).* ([0-9.]+) tokens\/s\).*/\1 \2/' | awk 'NF == 2 && $2 > 0 {printf "%.4f", $1/$2}'); TT=${TT:-0}
  echo "RESULT peer=$PEER model=$MODEL phase=decode beam=$BEAM min_len=$MIN_LEN max_len=$MAX_LEN $(decode_stats "$D/pred.sp" "$TT") decode_wall_s=$(wall_s "$D/decode.time") peak_rss_mb=$(peak_rss_mb "$D/decode.time") $(score_hyp "$D/hyp.txt" "$REF_RAW") $(decode_extra "$D/pred.sp" "$TT") threads=$OMP_NUM_THREADS src=$(basename "$SRC_FILE")" | tee "$D/result.txt"
else
  echo "unknown phase $PHASE (train|decode)"; exit 2
fi
