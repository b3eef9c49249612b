#!/usr/bin/env bash
# Adapted from the shared peer scripts (../shared/peers/prepare_data.sh). Changes: DATA_RAW comes from
# common.sh (env, else <repo>/../shared/data/multi30k if it exists) and its absence is a clear error;
# the SentencePiece model has the special ids seq2seq requires (pad 0, unk 1, bos 2, eos 3) so that
# every toolkit, seq2seq included, uses this one model (the peers read pieces, not ids).
# Train ONE joint SentencePiece BPE model (8000) on train.de+train.en and apply it to every split.
# Output ($DATA_SPM): {train,val,test2016}.{de,en} as space-separated pieces, spm.model,
# and vocab files in each toolkit's format, all built from the same SPM piece inventory (same order).
set -euo pipefail
source "$(dirname "$0")/common.sh"
PY=$PEERS_ROOT/common/bin/python
[ -n "$DATA_RAW" ] || { echo "set DATA_RAW to the raw Multi30k folder ({train,val,test2016}.{de,en})"; exit 1; }
mkdir -p "$DATA_SPM"
for f in train val test2016; do for l in de en; do test -s "$DATA_RAW/$f.$l" || { echo "missing $DATA_RAW/$f.$l"; exit 1; }; done; done
"$PY" - "$DATA_RAW" "$DATA_SPM" <<'PY'
import sys, os, collections
import sentencepiece as spm
raw, out = sys.argv[1], sys.argv[2]
m = os.path.join(out, "spm")
if not os.path.exists(m + ".model"):
    spm.SentencePieceTrainer.train(
        input=f"{raw}/train.de,{raw}/train.en", model_prefix=m, vocab_size=8000,
        model_type="bpe", character_coverage=1.0, num_threads=2, input_sentence_size=0,
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=m + ".model")
counts = collections.Counter()
for split in ("train", "val", "test2016"):
    for l in ("de", "en"):
        with open(f"{raw}/{split}.{l}", encoding="utf-8") as fi, open(f"{out}/{split}.{l}", "w", encoding="utf-8") as fo:
            for line in fi:
                pieces = sp.encode(line.strip(), out_type=str)
                if split == "train":
                    counts.update(pieces)
                fo.write(" ".join(pieces) + "\n")
pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())
          if not (sp.is_control(i) or sp.is_unknown(i))]  # drop <pad>, <unk>, <s>, </s>
# fairseq dict.txt ("piece count"), OpenNMT-py vocab ("piece\tcount"), JoeyNMT vocab (one piece per line)
with open(f"{out}/dict.txt", "w") as f:
    f.writelines(f"{p} {counts.get(p, 0) + 1}\n" for p in pieces)
with open(f"{out}/vocab.onmt", "w") as f:
    f.writelines(f"{p}\t{counts.get(p, 0) + 1}\n" for p in pieces)
with open(f"{out}/vocab.joey", "w") as f:
    f.writelines(["<unk>\n", "<pad>\n", "<s>\n", "</s>\n"] + [f"{p}\n" for p in pieces])
ntok = {l: sum(len(x.split()) for x in open(f"{out}/train.{l}")) for l in ("de", "en")}
print("spm pieces", sp.get_piece_size(), "train tokens", ntok)
PY
mkdir -p "$DATA_SPM/raw" && cp "$DATA_RAW"/{train,val,test2016}.{de,en} "$DATA_SPM/raw/"
ls -la "$DATA_SPM"
