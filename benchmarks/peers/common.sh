# Shared settings for all peer benchmarks. Source this file.
# Adapted from the shared peer scripts (../shared/peers/common.sh). Changes: paths relative to this repo
# (DATA_RAW defaults to <repo>/../shared/data/multi30k only if it exists), decoding knobs
# (BEAM, MIN_LEN, MAX_LEN, SRC_FILE, SRC_RAW, REF_RAW, DECODE_BATCH), LOG_INTERVAL, helpers for the
# train/decode phases.
PEERS_ROOT=${PEERS_ROOT:-/tmp/peers}           # venvs, prepared data, run outputs
PEERS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)   # this folder (benchmarks/peers)
REPO_ROOT=$(cd "$PEERS_DIR/../.." && pwd)
if [ -z "${DATA_RAW:-}" ] && [ -d "$REPO_ROOT/../shared/data/multi30k" ]; then
  DATA_RAW=$(cd "$REPO_ROOT/../shared/data/multi30k" && pwd)   # raw Multi30k {train,val,test2016}.{de,en}
fi
DATA_RAW=${DATA_RAW:-}
DATA_SPM=${DATA_SPM:-$PEERS_ROOT/data}      # SentencePiece-encoded corpus (shared by all peers)
WORK=${WORK:-$PEERS_ROOT/work}              # per-peer run outputs (train and decode phases share it)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} MKL_NUM_THREADS=${MKL_NUM_THREADS:-${OMP_NUM_THREADS:-2}}
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1   # old peers pickle argparse Namespaces in checkpoints
export PYTHONWARNINGS=ignore
export PIP_DISABLE_PIP_VERSION_CHECK=1
TORCH_PIN="torch==2.13.0"
# Training knobs (identical for all peers)
MAX_TOKENS=${MAX_TOKENS:-4096}
TRAIN_UPDATES=${TRAIN_UPDATES:-150}   # total updates; first WARMUP_UPDATES excluded from throughput
WARMUP_UPDATES=${WARMUP_UPDATES:-20}
LOG_INTERVAL=${LOG_INTERVAL:-10}     # updates per training log line (throughput = mean over lines after warm-up)
# Decoding knobs (identical for all peers)
BEAM=${BEAM:-5}                       # 1 = greedy search in every peer
MIN_LEN=${MIN_LEN:-0}                 # min output tokens (pieces, EOS excluded); 0 = no minimum
MAX_LEN=${MAX_LEN:-100}               # max output tokens; MIN_LEN=MAX_LEN=L forces exactly L
DECODE_BATCH=${DECODE_BATCH:-64}      # sentences per decoding batch
SRC_FILE=${SRC_FILE:-$DATA_SPM/test2016.de}   # SentencePiece pieces, space-separated, one sentence per line
SRC_RAW=${SRC_RAW:-}                  # JoeyNMT only: raw text instead (JoeyNMT then tokenizes it with spm.model)
# reference (raw text) for BLEU: default only when decoding the default test set; else bleu=nan
if [ -z "${REF_RAW:-}" ] && [ "$SRC_FILE" = "$DATA_SPM/test2016.de" ] && [ -z "$SRC_RAW" ]; then REF_RAW=$DATA_SPM/raw/test2016.en; fi
REF_RAW=${REF_RAW:-}
mkdir -p "$WORK"
# peak RSS (MB) from a /usr/bin/time -v log
peak_rss_mb() { awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$1"; }
wall_s() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.2f", s}' "$1"; }
check_len_knobs() {
  [[ "$BEAM" =~ ^[1-9][0-9]*$ && "$MIN_LEN" =~ ^[0-9]+$ && "$MAX_LEN" =~ ^[1-9][0-9]*$ ]] \
    || { echo "BEAM, MIN_LEN, MAX_LEN must be integers (BEAM>=1, MAX_LEN>=1)" >&2; exit 2; }
  [ "$MIN_LEN" -le "$MAX_LEN" ] || { echo "MIN_LEN ($MIN_LEN) > MAX_LEN ($MAX_LEN)" >&2; exit 2; }
  test -s "${1:-$SRC_FILE}" || { echo "missing input ${1:-$SRC_FILE} (SRC_FILE/SRC_RAW)" >&2; exit 2; }
}
# decode output folder name: <input>_b<beam>_len<min>-<max> (override: DECODE_TAG)
decode_tag() { echo "${DECODE_TAG:-$(basename "${SRC_RAW:-$SRC_FILE}" | tr -c 'A-Za-z0-9._\n-' _)_b${BEAM}_len${MIN_LEN}-${MAX_LEN}}"; }
# train_rates KIND LOG -> "peer_rate wall_rate" (target tokens/s) after WARMUP_UPDATES, as in the shared scripts:
#   peer_rate = mean of the peer's own logged rate over the log lines after the warm-up;
#   wall_rate = target tokens of those intervals / wall-clock between the warm-up line and the last line
#   (fairseq: wpb x updates; OpenNMT-py, JoeyNMT: logged rate x interval seconds).
train_rates() {
  "$PEERS_ROOT/common/bin/python" - "$1" "$2" "$WARMUP_UPDATES" <<'PY'
import re, sys, datetime
kind, log, w = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = []  # (update, peer tok/s, tokens per update or None, seconds)
for l in open(log, encoding="utf-8", errors="replace"):
    if kind == "fairseq":   # "epoch 001:     10 / 227 loss=... wps=2006 ... wpb=3400 ... num_updates=10 ... wall=20"
        if re.search(r"epoch \d+:\s+\d+ / \d+ ", l):
            kv = dict(re.findall(r"(\w+)=([\d.]+)", l))
            rows.append((int(kv["num_updates"]), float(kv["wps"]), float(kv["wpb"]), float(kv["wall"])))
    elif kind == "onmt":    # "Step 10/ 150; acc: ..; ppl: ..; xent: ..; lr: ..; 3422/ 3400 tok/s;     12 sec;"
        m = re.search(r"Step\s+(\d+)/\s*\d+;.*?(\d+)/\s*(\d+) tok/s;\s+(\d+) sec", l)
        if m: rows.append((int(m.group(1)), float(m.group(3)), None, float(m.group(4))))
    elif kind == "joeynmt": # "2026-11-21 07:00:00,123 ... Epoch 1, Step: 10, Batch Loss: .., Tokens per Sec: 809, Lr: .."
        m = re.search(r"^(\S+ \S+) .*Step:\s+(\d+),.*Tokens per Sec:\s+(\d+)", l)
        if m:
            t = datetime.datetime.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S").timestamp()
            rows.append((int(m.group(2)), float(m.group(3)), None, t))
base = [r for r in rows if r[0] <= w]; post = [r for r in rows if r[0] > w]
if not base or not post or post[-1][3] <= base[-1][3]:
    print("nan nan"); sys.exit()   # too few log lines after the warm-up (raise TRAIN_UPDATES or lower LOG_INTERVAL)
peer = sum(r[1] for r in post) / len(post)
prev = base[-1]; tok = 0.0
for r in post:
    tok += r[2] * (r[0] - prev[0]) if r[2] is not None else r[1] * (r[3] - prev[3])
    prev = r
print(f"{peer:.0f} {tok / (post[-1][3] - base[-1][3]):.0f}")
PY
}
