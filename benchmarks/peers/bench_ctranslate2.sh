#!/usr/bin/env bash
# usage: bench_ctranslate2.sh decode fairseq|onmt
# Converts the transformer trained by 'bench_fairseq.sh train transformer' / 'bench_onmt.sh train transformer'
# (same $WORK) to CTranslate2 and decodes SRC_FILE once per compute type (CT2_COMPUTE_TYPES, default
# "float32 int8"), one RESULT line each.
# Adapted from the shared peer scripts (../shared/peers/bench_ctranslate2.sh). Changes: 'decode' phase argument;
# the converted models are cached (re-converted only when the source checkpoint changes); decoding knobs BEAM
# (1 = greedy), MIN_LEN/MAX_LEN (min_decoding_length/max_decoding_length), DECODE_BATCH, SRC_FILE,
# CT2_COMPUTE_TYPES; RESULT line with phase=decode, decode_tok_s, out_len_min/max.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); source "$HERE/common.sh"; source "$HERE/score.sh"
PHASE=${1:?usage: bench_ctranslate2.sh decode fairseq|onmt}; SRC=${2:-fairseq}
[ "$PHASE" = decode ] || { echo "unknown phase $PHASE (CTranslate2 only decodes: decode fairseq|onmt)"; exit 2; }
check_len_knobs
V=$PEERS_ROOT/ctranslate2
W=$WORK/ctranslate2/$SRC; mkdir -p "$W"
case $SRC in
  onmt) CKPT=$(ls -t "$WORK"/onmt/transformer/model_step_*.pt 2>/dev/null | head -1 || true) ;;
  fairseq) CKPT=$WORK/fairseq/transformer/ckpt/checkpoint_last.pt; [ -f "$CKPT" ] || CKPT= ;;
  *) echo "unknown source $SRC (fairseq|onmt)"; exit 2 ;;
esac
test -n "$CKPT" || { echo "no trained $SRC transformer in $WORK: run 'bench_$SRC.sh train transformer' first" >&2; exit 2; }
STAMP="$CKPT $(stat -c %Y "$CKPT")"
for Q in ${CT2_COMPUTE_TYPES:-float32 int8}; do
  M=$W/model_$Q
  if [ "$(cat "$M/.source" 2>/dev/null)" != "$STAMP" ]; then
    rm -rf "$M"
    case $SRC in
      onmt) # OpenNMT-py 3.5 trains with self_attn_type=scaled-dot-flash (torch SDPA), which the converter
            # rejects; it is the same math as scaled-dot, so only the stored option is rewritten.
            "$V/bin/python" -c "import sys, torch; c = torch.load(sys.argv[1], map_location='cpu', weights_only=False); c['opt'].self_attn_type = 'scaled-dot'; torch.save(c, sys.argv[2])" "$CKPT" "$W/onmt_ckpt_for_ct2.pt"
            "$V/bin/ct2-opennmt-py-converter" --model_path "$W/onmt_ckpt_for_ct2.pt" --unsafe_deserialization \
               --output_dir "$M" --quantization "$Q" --force > "$W/convert_$Q.log" 2>&1 ;;
      fairseq) "$PEERS_ROOT/fairseq/bin/ct2-fairseq-converter" --model_path "$CKPT" \
               --data_dir "$WORK/fairseq/bin" --source_lang de --target_lang en --unsafe_deserialization \
               --output_dir "$M" --quantization "$Q" --force > "$W/convert_$Q.log" 2>&1 ;;
    esac
    echo "$STAMP" > "$M/.source"
  fi
  D=$W/decode/$(decode_tag)_$Q; rm -rf "$D"; mkdir -p "$D"
  echo "== ctranslate2 ($SRC model) $Q: decoding $(basename "$SRC_FILE") beam $BEAM len $MIN_LEN-$MAX_LEN" >&2
  /usr/bin/time -v -o "$D/decode.time" "$V/bin/python" "$HERE/decode_ct2.py" "$M" "$Q" \
     "$SRC_FILE" "$D/pred.sp" "$BEAM" "$OMP_NUM_THREADS" "$MIN_LEN" "$MAX_LEN" "$DECODE_BATCH" > "$D/decode.log" 2>&1
  spm_detok "$D/pred.sp" > "$D/hyp.txt"
  TT=$(grep -o 'translate_s=[0-9.]*' "$D/decode.log" | cut -d= -f2)   # timed around translate_batch (model load excluded)
  echo "RESULT peer=ctranslate2-4.8.5 model=transformer(from-$SRC) phase=decode beam=$BEAM min_len=$MIN_LEN max_len=$MAX_LEN compute_type=$Q $(decode_stats "$D/pred.sp" "${TT:-0}") decode_wall_s=$(wall_s "$D/decode.time") peak_rss_mb=$(peak_rss_mb "$D/decode.time") $(score_hyp "$D/hyp.txt" "$REF_RAW") $(decode_extra "$D/pred.sp" "${TT:-0}") threads=$OMP_NUM_THREADS src=$(basename "$SRC_FILE")" | tee "$D/result.txt"
done
