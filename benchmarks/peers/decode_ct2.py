"""CTranslate2 decoding of a SentencePiece-tokenized file (one sentence per line, pieces space-separated).
Adapted from the shared peer scripts (../shared/peers/decode_ct2.py). Changes: min/max decoding length and
batch size as arguments (beam 1 = CTranslate2's greedy search), translation time printed with more digits.
usage: decode_ct2.py MODEL_DIR COMPUTE_TYPE SRC_PIECES OUT_PIECES BEAM THREADS MIN_LEN MAX_LEN BATCH"""

import sys
import time

import ctranslate2

model_dir, compute_type, src, out, beam, threads, min_len, max_len, batch = sys.argv[1:10]
t0 = time.perf_counter()
tr = ctranslate2.Translator(
    model_dir, device="cpu", compute_type=compute_type, intra_threads=int(threads), inter_threads=1
)
t1 = time.perf_counter()
lines = [line.split() for line in open(src, encoding="utf-8")]
# max_input_length=0: no input truncation (default 1024); the end token is not returned (return_end_token=False)
res = tr.translate_batch(
    lines,
    beam_size=int(beam),
    max_batch_size=int(batch),
    batch_type="examples",
    min_decoding_length=int(min_len),
    max_decoding_length=int(max_len),
    max_input_length=0,
)
t2 = time.perf_counter()
with open(out, "w", encoding="utf-8") as f:
    for r in res:
        f.write(" ".join(r.hypotheses[0]) + "\n")
print(
    f"CT2 compute_type={compute_type} load_s={t1 - t0:.3f} translate_s={t2 - t1:.4f} "
    f"sent_s={len(lines) / (t2 - t1):.2f}"
)
