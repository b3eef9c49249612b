#!/usr/bin/env bash
# usage: bench_joeynmt.sh train|decode transformer|gru
# Adapted from the shared peer scripts (../shared/peers/bench_joeynmt.sh). Changes: separate train and decode
# phases (decode reuses $WORK/joeynmt/MODEL/model/latest.ckpt and writes its own config per decode run);
# decoding knobs BEAM (1 = JoeyNMT's greedy search), MIN_LEN/MAX_LEN (testing.min_output_length /
# max_output_length; min_output_length is passed through by joey_translate.py, since JoeyNMT 2.3.0 ignores it),
# DECODE_BATCH; input: SRC_FILE pieces read as whitespace-separated tokens (level: word, so JoeyNMT sees exactly
# the pieces the other peers see) or SRC_RAW raw text tokenized by JoeyNMT with spm.model (the shared scripts'
# way); the output side is always read as pieces (level: word) so generated pieces can be counted; one RESULT line
# per phase (decode_tok_s, out_len_min/max); LOG_INTERVAL knob (logging_freq).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); source "$HERE/common.sh"; source "$HERE/score.sh"
PHASE=${1:?usage: bench_joeynmt.sh train|decode transformer|gru}; MODEL=${2:-transformer}
V=$PEERS_ROOT/joeynmt
W=$WORK/joeynmt/$MODEL
PEER=joeynmt-2.3.0
case $MODEL in
  transformer) MODEL_CFG="
    encoder:
        type: transformer
        num_layers: 3
        num_heads: 4
        embeddings: {embedding_dim: 256, scale: True, dropout: 0.0}
        hidden_size: 256
        ff_size: 1024
        dropout: 0.1
        layer_norm: pre
    decoder:
        type: transformer
        num_layers: 3
        num_heads: 4
        embeddings: {embedding_dim: 256, scale: True, dropout: 0.0}
        hidden_size: 256
        ff_size: 1024
        dropout: 0.1
        layer_norm: pre" ;;
  gru) MODEL_CFG="
    encoder:
        type: recurrent
        rnn_type: gru
        num_layers: 2
        bidirectional: True     # unidirectional crashes in joeynmt 2.3.0 (IndexError in RecurrentEncoder._get_final_state)
        embeddings: {embedding_dim: 256, scale: False}
        hidden_size: 256
        dropout: 0.1
    decoder:
        type: recurrent
        rnn_type: gru
        num_layers: 2
        embeddings: {embedding_dim: 256, scale: False}
        hidden_size: 256
        attention: luong
        input_feeding: True
        init_hidden: bridge
        dropout: 0.1
        hidden_dropout: 0.1" ;;
  *) echo "unknown model $MODEL (transformer|gru)"; exit 2 ;;
esac
# LANGCFG LANG spm|pieces: raw text tokenized by JoeyNMT with the shared spm.model, or pre-tokenized pieces
LANGCFG() {
  if [ "$2" = spm ]; then cat <<Y
        lang: $1
        level: bpe
        lowercase: False
        normalize: False
        max_length: 200
        voc_file: $DATA_SPM/vocab.joey
        tokenizer_type: sentencepiece
        tokenizer_cfg: {model_file: $DATA_SPM/spm.model, pretokenizer: none}
Y
  else cat <<Y
        lang: $1
        level: word
        lowercase: False
        normalize: False
        voc_file: $DATA_SPM/vocab.joey
        tokenizer_cfg: {pretokenizer: none}
Y
  fi
}
# CONFIG MODEL_DIR SRC_KIND TRG_KIND LOAD_MODEL
CONFIG() { cat <<YAML
name: bench_$MODEL
joeynmt_version: "2.3.0"
model_dir: $1
use_cuda: False
fp16: False
random_seed: 1
data:
    train: $DATA_SPM/raw/train
    dev: $DATA_SPM/raw/val
    test: $DATA_SPM/raw/test2016
    dataset_type: plain
    src:
$(LANGCFG de "$2")
    trg:
$(LANGCFG en "$3")
    special_symbols: {unk_token: "<unk>", unk_id: 0, pad_token: "<pad>", pad_id: 1, bos_token: "<s>", bos_id: 2, eos_token: "</s>", eos_id: 3}
testing:
    load_model: $4
    n_best: 1
    beam_size: $BEAM
    beam_alpha: 1.0
    batch_size: $DECODE_BATCH
    batch_type: sentence
    min_output_length: $MIN_LEN
    max_output_length: $MAX_LEN
    eval_metrics: [bleu]
    sacrebleu_cfg: {tokenize: "13a"}
training:
    optimizer: adam
    adam_betas: [0.9, 0.98]
    normalization: tokens
    scheduling: warmupinversesquareroot
    learning_rate: 0.001
    learning_rate_warmup: 100
    learning_rate_min: 1.0e-8
    label_smoothing: 0.1
    loss: crossentropy
    batch_size: $MAX_TOKENS
    batch_type: token
    batch_multiplier: 1
    epochs: 1000
    updates: $TRAIN_UPDATES
    validation_freq: 1000000
    logging_freq: $LOG_INTERVAL
    early_stopping_metric: bleu
    overwrite: True
    shuffle: True
    num_workers: 0
    keep_best_ckpts: 1
    keep_last_ckpts: 1
model:
    initializer: xavier_uniform
    bias_initializer: zeros
    init_gain: 1.0
    embed_initializer: xavier_uniform
    embed_init_gain: 1.0
    tied_embeddings: True
    tied_softmax: True
$MODEL_CFG
YAML
}

if [ "$PHASE" = train ]; then
  rm -rf "$W"; mkdir -p "$W"
  CONFIG "$W/model" spm spm "$W/model/latest.ckpt" > "$W/config.yaml"
  echo "== joeynmt $MODEL: training $TRAIN_UPDATES updates" >&2
  /usr/bin/time -v -o "$W/train.time" "$V/bin/python" -m joeynmt train "$W/config.yaml" --skip-test > "$W/train.log" 2>&1
  # peer-logged: "Epoch N, Step: S, ... Tokens per Sec: X" (per logging interval); own: tokens/wall from log timestamps
  read -r TOKS_PEER TOKS_WALL < <(train_rates joeynmt "$W/model/train.log")
  UPD=$(grep -o "Step: *[0-9]*" "$W/model/train.log" | tail -1 | grep -o "[0-9]*$" || true)
  echo "RESULT peer=$PEER model=$MODEL phase=train train_tok_s=$TOKS_PEER train_tok_s_wall=$TOKS_WALL updates=${UPD:-$TRAIN_UPDATES} train_wall_s=$(wall_s "$W/train.time") train_peak_rss_mb=$(peak_rss_mb "$W/train.time") max_tokens=$MAX_TOKENS threads=$OMP_NUM_THREADS" | tee "$W/result_train.txt"

elif [ "$PHASE" = decode ]; then
  if [ -n "$SRC_RAW" ]; then IN=$SRC_RAW; KIND=spm; else IN=$SRC_FILE; KIND=pieces; fi
  check_len_knobs "$IN"
  test -e "$W/model/latest.ckpt" || { echo "no trained model $W/model/latest.ckpt: run 'bench_joeynmt.sh train $MODEL' first (same WORK)" >&2; exit 2; }
  D=$W/decode/$(decode_tag); rm -rf "$D"; mkdir -p "$D"
  CONFIG "$D" "$KIND" pieces "$W/model/latest.ckpt" > "$D/config.yaml"
  echo "== joeynmt $MODEL: decoding $(basename "$IN") ($KIND) beam $BEAM len $MIN_LEN-$MAX_LEN" >&2
  # beam_size 1 = JoeyNMT's greedy search; min_output_length L: EOS forbidden for the first L steps;
  # max_output_length L: at most L steps (search stops, EOS not needed).
  # (hypotheses go to stdout: joeynmt 2.3.0 'translate -o FILE' crashes with AttributeError: 'BaseConfig' object has no attribute 'n_best')
  /usr/bin/time -v -o "$D/decode.time" "$V/bin/python" "$HERE/joey_translate.py" translate "$D/config.yaml" \
    < "$IN" > "$D/pred.sp" 2> "$D/decode.log"
  spm_detok "$D/pred.sp" > "$D/hyp.txt"
  # JoeyNMT's own timer: "Generation took X[sec]" (around its batch loop incl. on-the-fly tokenization; model load excluded)
  TT=$(grep -o "Generation took [0-9.]*" "$D/decode.log" | tail -1 | awk '{print $NF}')
  echo "RESULT peer=$PEER model=$MODEL phase=decode beam=$BEAM min_len=$MIN_LEN max_len=$MAX_LEN $(decode_stats "$D/pred.sp" "${TT:-0}") decode_wall_s=$(wall_s "$D/decode.time") peak_rss_mb=$(peak_rss_mb "$D/decode.time") $(score_hyp "$D/hyp.txt" "$REF_RAW") $(decode_extra "$D/pred.sp" "${TT:-0}") threads=$OMP_NUM_THREADS src=$(basename "$IN")" | tee "$D/result.txt"
else
  echo "unknown phase $PHASE (train|decode)"; exit 2
fi
