#!/usr/bin/env bash
# usage: bench_onmt.sh train|decode transformer|gru
# Adapted from the shared peer scripts (../shared/peers/bench_onmt.sh). Changes: separate train and decode phases
# (decode reuses the newest $WORK/onmt/MODEL/model_step_*.pt; replaces SKIP_TRAIN); decoding knobs BEAM (1 = real
# greedy search: -random_sampling_topk 1, since beam_size 1 alone still runs BeamSearch), MIN_LEN/MAX_LEN
# (-min_length/-max_length, -max_length_ratio 0), DECODE_BATCH, SRC_FILE; one RESULT line per phase
# (decode_tok_s, out_len_min/max); LOG_INTERVAL knob (report_every).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); source "$HERE/common.sh"; source "$HERE/score.sh"
PHASE=${1:?usage: bench_onmt.sh train|decode transformer|gru}; MODEL=${2:-transformer}
V=$PEERS_ROOT/onmt; export PATH=$V/bin:$PATH
W=$WORK/onmt/$MODEL
PEER=OpenNMT-py-3.5.1
case $MODEL in
  transformer) ARCH="encoder_type: transformer
decoder_type: transformer
enc_layers: 3
dec_layers: 3
hidden_size: 256
word_vec_size: 256
transformer_ff: 1024
heads: 4
position_encoding: true
layer_norm: standard
pos_ffn_activation_fn: relu
dropout: [0.1]
attention_dropout: [0.1]" ;;
  gru) ARCH="encoder_type: rnn
decoder_type: rnn
rnn_type: GRU
enc_layers: 2
dec_layers: 2
hidden_size: 256
word_vec_size: 256
global_attention: general
input_feed: 1
dropout: [0.1]" ;;
  *) echo "unknown model $MODEL (transformer|gru)"; exit 2 ;;
esac

if [ "$PHASE" = train ]; then
  rm -rf "$W"; mkdir -p "$W"
  cat > "$W/config.yaml" <<YAML
save_data: $W/run
src_vocab: $DATA_SPM/vocab.onmt
share_vocab: true
src_vocab_size: 10000
tgt_vocab_size: 10000
overwrite: true
data:
  corpus_1:
    path_src: $DATA_SPM/train.de
    path_tgt: $DATA_SPM/train.en
  valid:
    path_src: $DATA_SPM/val.de
    path_tgt: $DATA_SPM/val.en
save_model: $W/model
save_checkpoint_steps: $TRAIN_UPDATES
train_steps: $TRAIN_UPDATES
valid_steps: 1000000
report_every: $LOG_INTERVAL
seed: 1
num_workers: 0
batch_type: tokens
batch_size: $MAX_TOKENS
valid_batch_size: 64
bucket_size: 32768
accum_count: [1]
share_embeddings: true
share_decoder_embeddings: true
$ARCH
optim: adam
adam_beta1: 0.9
adam_beta2: 0.98
decay_method: noam
learning_rate: 0.16
warmup_steps: 100
max_grad_norm: 0
label_smoothing: 0.1
param_init: 0
param_init_glorot: true
normalization: tokens
YAML
  echo "== onmt $MODEL: training $TRAIN_UPDATES updates" >&2
  /usr/bin/time -v -o "$W/train.time" onmt_train -config "$W/config.yaml" > "$W/train.log" 2>&1
  UPD=$(grep -o "Step [0-9]*/ *[0-9]*" "$W/train.log" | tail -1 | sed -E 's#Step ([0-9]*)/.*#\1#')
  # peer-logged: "Step N/ M; ... src/tgt tok/s; S sec" (per report interval, reset each report)
  read -r TOKS_PEER TOKS_WALL < <(train_rates onmt "$W/train.log")
  echo "RESULT peer=$PEER model=$MODEL phase=train train_tok_s=$TOKS_PEER train_tok_s_wall=$TOKS_WALL updates=${UPD:-$TRAIN_UPDATES} train_wall_s=$(wall_s "$W/train.time") train_peak_rss_mb=$(peak_rss_mb "$W/train.time") max_tokens=$MAX_TOKENS threads=$OMP_NUM_THREADS" | tee "$W/result_train.txt"

elif [ "$PHASE" = decode ]; then
  check_len_knobs
  CKPT=$(ls -t "$W"/model_step_*.pt 2>/dev/null | head -1 || true)
  test -n "$CKPT" || { echo "no trained model in $W: run 'bench_onmt.sh train $MODEL' first (same WORK)" >&2; exit 2; }
  D=$W/decode/$(decode_tag); rm -rf "$D"; mkdir -p "$D"
  # -max_length_ratio 0: OpenNMT-py 3.5 otherwise caps outputs at 1.25*src_len+5 tokens (default);
  # -min_length L: EOS forbidden until L tokens; -max_length L: finished after L tokens (BOS not counted).
  # beam_size 1 alone still runs BeamSearch with one hypothesis; -random_sampling_topk 1 selects GreedySearch (argmax).
  GREEDY=(); [ "$BEAM" = 1 ] && GREEDY=(-random_sampling_topk 1)
  echo "== onmt $MODEL: decoding $(basename "$SRC_FILE") beam $BEAM len $MIN_LEN-$MAX_LEN" >&2
  /usr/bin/time -v -o "$D/decode.time" onmt_translate -model "$CKPT" -src "$SRC_FILE" -output "$D/pred.sp" \
    -beam_size "$BEAM" "${GREEDY[@]}" -batch_size "$DECODE_BATCH" -batch_type sents \
    -min_length "$MIN_LEN" -max_length "$MAX_LEN" -max_length_ratio 0 -report_time > "$D/decode.log" 2>&1
  spm_detok "$D/pred.sp" > "$D/hyp.txt"
  # OpenNMT-py's own timer (around its whole translate loop, model load excluded) is printed with 1 decimal
  # ("Total translation time (s): X"); "Tokens per second: R" = its generated-token count / that time, so the
  # time is taken as (generated pieces, EOS excluded = OpenNMT-py's count) / R.
  NTOK=$(awk '{n+=NF} END{print n+0}' "$D/pred.sp")
  TT=$(grep -o "Tokens per second: [0-9.]*" "$D/decode.log" | awk -v n="$NTOK" '$NF > 0 {printf "%.4f", n/$NF}')
  # (no generated token at all: "Average translation time (ms): A" x sentences instead)
  [ -n "$TT" ] || TT=$(grep -o "Average translation time (ms): [0-9.]*" "$D/decode.log" | awk -v n="$(wc -l < "$D/pred.sp")" '{printf "%.4f", $NF*n/1000}')
  echo "RESULT peer=$PEER model=$MODEL phase=decode beam=$BEAM min_len=$MIN_LEN max_len=$MAX_LEN $(decode_stats "$D/pred.sp" "${TT:-0}") decode_wall_s=$(wall_s "$D/decode.time") peak_rss_mb=$(peak_rss_mb "$D/decode.time") $(score_hyp "$D/hyp.txt" "$REF_RAW") $(decode_extra "$D/pred.sp" "${TT:-0}") threads=$OMP_NUM_THREADS src=$(basename "$SRC_FILE")" | tee "$D/result.txt"
else
  echo "unknown phase $PHASE (train|decode)"; exit 2
fi
