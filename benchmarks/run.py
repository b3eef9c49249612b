"""Run the speed benchmark: seq2seq and its peers, one after the other, in one run.

    python benchmarks/run.py --data-raw ../shared/data/multi30k        # everything (~35 min, 2 cores)
    python benchmarks/run.py --only decode --skip-peers-train          # reuse trained models
    python benchmarks/run.py --only batches pairs                      # batch-size sweep, int8 pairs

Set-up once (see benchmarks/README.md): ``bash benchmarks/peers/install_*.sh`` and
``bash benchmarks/peers/prepare_data.sh`` (one SentencePiece model for every toolkit).

Every figure is measured here, in this run, on this machine, and each peer's figure is
divided into ours: the machine is noisy, so absolute numbers drift between runs while ratios
within one run hold. The table is printed and saved to ``benchmarks/results/DATE-HOST.md``
with the machine description and the commit.

Decoding is compared at **forced output length** (every hypothesis exactly ``--out-len``
tokens: ``min_len = max_len``), because the models are only ``--updates`` updates old and
would otherwise decode until the length cap with repetitions; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from seq2seq.config import SearchConfig  # noqa: E402 (after the path set-up)

PEERS = HERE / "peers"

# (label, script, model) of the peers' training runs; the RNN peers train their own RNN kind.
PEER_MODELS = {
    "transformer": [
        ("fairseq", "bench_fairseq.sh", "transformer"),
        ("OpenNMT-py", "bench_onmt.sh", "transformer"),
        ("JoeyNMT", "bench_joeynmt.sh", "transformer"),
    ],
    "gru": [
        ("fairseq (LSTM)", "bench_fairseq.sh", "lstm"),
        ("OpenNMT-py", "bench_onmt.sh", "gru"),
        ("JoeyNMT", "bench_joeynmt.sh", "gru"),
    ],
}


def parse_result(text: str) -> list[dict[str, str]]:
    """The ``RESULT key=value ...`` lines of a script's output."""
    rows = []
    for line in text.splitlines():
        if line.startswith("RESULT "):
            rows.append(dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv))
    return rows


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.env = {
            **os.environ,
            "OMP_NUM_THREADS": str(args.threads),
            "MKL_NUM_THREADS": str(args.threads),
            "PEERS_ROOT": str(args.peers_root),
            "DATA_SPM": str(args.data_spm),
            "WORK": str(args.work),
            "DATA_RAW": str(args.data_raw),
            "MAX_TOKENS": str(args.max_tokens),
            "WARMUP_UPDATES": str(args.warmup),
        }
        self.log = open(args.work / "run.log", "a", encoding="utf-8")
        self.results: list[dict[str, str]] = []

    def run(self, command: list[str], label: str, **env: str) -> list[dict[str, str]]:
        shown = " ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(shlex.quote(c) for c in command)
        print(f"[bench] {label}: {shown.strip()}", file=sys.stderr, flush=True)
        self.log.write(f"$ {shown}\n")
        proc = subprocess.run(command, env={**self.env, **env}, capture_output=True, text=True, cwd=REPO)
        self.log.write(proc.stdout + proc.stderr)
        self.log.flush()
        rows = parse_result(proc.stdout)
        if proc.returncode != 0 or not rows:
            print(
                f"[bench] {label} FAILED (exit {proc.returncode}); see {self.args.work / 'run.log'}",
                file=sys.stderr,
                flush=True,
            )
            return []
        for row in rows:
            row["label"] = label
            print("  " + " ".join(f"{k}={v}" for k, v in row.items() if k != "label"), file=sys.stderr, flush=True)
        self.results += rows
        return rows

    # ---------------------------------------------------------------- phases
    def ours(self, phase: str, model: str, *flags: str) -> list[dict[str, str]]:
        cmd = [
            sys.executable,
            str(HERE / "ours.py"),
            phase,
            "--model",
            model,
            "--work",
            str(self.args.work / "seq2seq"),
            "--threads",
            str(self.args.threads),
            *flags,
        ]
        return self.run(cmd, f"seq2seq {phase} {model} {' '.join(flags)}".strip())

    def peer(self, script: str, phase: str, model: str, label: str, **env: str) -> list[dict[str, str]]:
        return self.run(["bash", str(PEERS / script), phase, model], f"{label} {phase} {model}", **env)

    def train(self) -> None:
        a = self.args
        for kind in a.models:
            if not a.skip_peers_train:
                for label, script, model in PEER_MODELS[kind]:
                    updates = a.joey_updates if script == "bench_joeynmt.sh" else a.updates
                    self.peer(script, "train", model, label, TRAIN_UPDATES=str(updates))
            for precision in ("fp32", "auto"):
                self.ours(
                    "train",
                    kind,
                    "--data-raw",
                    str(a.data_raw),
                    "--spm",
                    str(a.data_spm / "spm.model"),
                    "--updates",
                    str(a.updates),
                    "--warmup",
                    str(a.warmup),
                    "--max-tokens",
                    str(a.max_tokens),
                    "--precision",
                    precision,
                )

    def decode(self) -> None:
        a = self.args
        test_raw, test_ref = a.data_raw / "test2016.de", a.data_raw / "test2016.en"
        for kind in a.models:
            for beam in (5, 1):
                knobs = {"BEAM": str(beam), "MIN_LEN": str(a.out_len), "MAX_LEN": str(a.out_len)}
                for label, script, model in PEER_MODELS[kind]:
                    self.peer(script, "decode", model, label, **knobs)
                if kind == "transformer":
                    self.peer(
                        "bench_ctranslate2.sh",
                        "decode",
                        "fairseq",
                        "CTranslate2",
                        **knobs,
                        DECODE_BATCH=str(a.ct2_batch),
                    )
                for variant in ([], ["--quantize", "int8"], ["--precision", "bf16"]):
                    self.ours(
                        "decode",
                        kind,
                        "--src",
                        str(test_raw),
                        "--ref",
                        str(test_ref),
                        "--beam",
                        str(beam),
                        "--min-len",
                        str(a.out_len),
                        "--max-len",
                        str(a.out_len),
                        *variant,
                    )

    def batches(self) -> None:
        """Transformer beam 5 at several batch sizes, the same sentences per batch for both
        decoders (seq2seq: --batch-rows 5 x sentences, no token limit); each one's best compared."""
        a = self.args
        test_raw = a.data_raw / "test2016.de"
        knobs = {"BEAM": "5", "MIN_LEN": str(a.out_len), "MAX_LEN": str(a.out_len)}
        for sents in a.batch_sentences:
            self.peer(
                "bench_ctranslate2.sh",
                "decode",
                "fairseq",
                f"CTranslate2 batch{sents}",
                DECODE_BATCH=str(sents),
                DECODE_TAG=f"batch{sents}",
                **knobs,
            )
            for quantize in ([], ["--quantize", "int8"]):
                self.ours(
                    "decode",
                    "transformer",
                    "--src",
                    str(test_raw),
                    "--beam",
                    "5",
                    "--min-len",
                    str(a.out_len),
                    "--max-len",
                    str(a.out_len),
                    "--batch-rows",
                    str(5 * sents),
                    "--batch-tokens",
                    "1000000",
                    "--tag",
                    f"batch{sents}",
                    *quantize,
                )

    def pairs(self) -> None:
        """seq2seq int8 and CTranslate2 int8 (Transformer, beam 5, the main table's batch sizes), run
        back to back ``--pairs`` times: single figures vary by about 10% on a shared machine."""
        a = self.args
        knobs = {
            "BEAM": "5",
            "MIN_LEN": str(a.out_len),
            "MAX_LEN": str(a.out_len),
            "CT2_COMPUTE_TYPES": "int8",
            "DECODE_BATCH": str(a.ct2_batch),
        }
        for i in range(a.pairs):
            self.ours(
                "decode",
                "transformer",
                "--src",
                str(a.data_raw / "test2016.de"),
                "--beam",
                "5",
                "--min-len",
                str(a.out_len),
                "--max-len",
                str(a.out_len),
                "--tag",
                f"pair{i}",
                "--quantize",
                "int8",
            )
            self.peer(
                "bench_ctranslate2.sh", "decode", "fairseq", f"CTranslate2 pair{i}", DECODE_TAG=f"pair{i}", **knobs
            )

    def lengths(self) -> None:
        """Decode time per sentence for inputs (and forced outputs) of 10..200 tokens."""
        a = self.args
        inputs = make_length_inputs(a.data_spm, a.work / "lengths", a.lengths, a.length_sentences)
        for n, (pieces, raw) in inputs.items():
            knobs = {
                "BEAM": "5",
                "MIN_LEN": str(n),
                "MAX_LEN": str(n),
                "SRC_FILE": str(pieces),
                "DECODE_TAG": f"len{n}",
            }
            self.peer("bench_fairseq.sh", "decode", "transformer", f"fairseq len{n}", **knobs)
            self.peer("bench_onmt.sh", "decode", "transformer", f"OpenNMT-py len{n}", **knobs)
            self.peer("bench_ctranslate2.sh", "decode", "fairseq", f"CTranslate2 len{n}", **knobs)
            for quantize in ([], ["--quantize", "int8"]):
                self.ours(
                    "decode",
                    "transformer",
                    "--src",
                    str(raw),
                    "--beam",
                    "5",
                    "--min-len",
                    str(n),
                    "--max-len",
                    str(n),
                    "--tag",
                    f"len{n}",
                    *quantize,
                )


def make_length_inputs(data_spm: Path, out: Path, lengths: list[int], count: int) -> dict[int, tuple[Path, Path]]:
    """Sentences of exactly N pieces (test2016 sources run together and cut), as pieces (for
    the peers) and as the text they decode to (for seq2seq, which tokenizes raw text)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(data_spm / "spm.model"))
    stream = [p for line in (data_spm / "test2016.de").read_text(encoding="utf-8").splitlines() for p in line.split()]
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for n in lengths:
        rows = [stream[(i * n) % (len(stream) - n) :][:n] for i in range(count)]
        pieces, raw = out / f"len{n}.de", out / f"len{n}.raw.de"
        pieces.write_text("".join(" ".join(r) + "\n" for r in rows), encoding="utf-8")
        raw.write_text("".join(sp.decode_pieces(r) + "\n" for r in rows), encoding="utf-8")
        files[n] = (pieces, raw)
    return files


# ---------------------------------------------------------------------- report
def fnum(value: str | float | None, digits: int = 0) -> str:
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return "-"


def ratio(ours: str | None, theirs: str | None, higher_is_better: bool = True) -> str:
    try:
        a, b = float(ours), float(theirs)
    except (TypeError, ValueError):
        return "-"
    if a <= 0 or b <= 0:
        return "-"
    return f"{a / b:.2f}x" if higher_is_better else f"{b / a:.2f}x"


def report(results: list[dict[str, str]], args: argparse.Namespace) -> str:
    lines = [f"# Speed benchmark, {datetime.date.today()}", ""]
    lines += [
        f"- machine: {machine()}",
        f"- commit: {commit()}",
        f"- threads: {args.threads}; token budget {args.max_tokens}; {args.updates} training updates "
        f"(JoeyNMT {args.joey_updates}), throughput after update {args.warmup}",
        f"- decoding: test2016 (1,000 sentences), every output forced to exactly {args.out_len} tokens "
        f"(min = max length); batches of 64 sentences (PyTorch peers), {args.ct2_batch} (CTranslate2), "
        f"seq2seq's defaults (at most {SearchConfig.batch_tokens:,} source tokens and {SearchConfig.batch_rows} "
        f"hypotheses: {SearchConfig.batch_rows // 5} sentences at beam 5)",
        f"- command: `python benchmarks/run.py {' '.join(sys.argv[1:])}`",
        "",
    ]
    train = [r for r in results if r.get("phase") == "train"]
    ours_train = {(r["model"], r.get("precision")): r for r in train if r.get("peer") == "seq2seq"}
    lines += (
        []
        if not train
        else [
            "## Training throughput (real target tokens per second)",
            "",
            "| model | toolkit | tok/s | peak RSS MB | seq2seq fp32 / it | seq2seq default / it |",
            "|---|---|---|---|---|---|",
        ]
    )
    for kind in args.models if train else []:
        fp32, auto = ours_train.get((kind, "fp32"), {}), ours_train.get((kind, "auto"), {})
        for r in train:
            if r.get("peer") == "seq2seq" or _kind(r) != kind:
                continue
            lines.append(
                f"| {kind} | {r['label'].split(' train')[0]} | {fnum(r.get('train_tok_s'))} | "
                f"{fnum(r.get('train_peak_rss_mb'))} | {ratio(fp32.get('train_tok_s'), r.get('train_tok_s'))} | "
                f"{ratio(auto.get('train_tok_s'), r.get('train_tok_s'))} |"
            )
        for name, r in (("seq2seq fp32", fp32), ("seq2seq default (precision auto)", auto)):
            if r:
                lines.append(
                    f"| {kind} | {name} | {fnum(r.get('train_tok_s'))} | {fnum(r.get('train_peak_rss_mb'))} | | |"
                )
    lines.append("")

    decode = [
        r
        for r in results
        if r.get("phase") == "decode" and not any(f" {tag}" in r["label"] for tag in ("len", "batch", "pair"))
    ]
    lines += (
        []
        if not decode
        else [
            f"## Decoding test2016, forced length {args.out_len}",
            "",
            "| model | beam | decoder | sent/s | tok/s | process s (with load) | peak RSS MB | "
            "seq2seq fp32 / it | seq2seq int8 / it | RSS: it / seq2seq fp32 |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
    )
    for kind in args.models:
        for beam in ("5", "1"):
            rows = [r for r in decode if r.get("beam") == beam and _kind(r) == kind]
            ours = {r.get("compute_type"): r for r in rows if r.get("peer") == "seq2seq"}
            o32, o8 = ours.get("float32", {}), ours.get("int8", {})
            for r in rows:
                name = r["label"].split(" decode")[0] + (f" {r['compute_type']}" if r.get("compute_type") else "")
                if r.get("peer") == "seq2seq":
                    name = f"seq2seq {r.get('compute_type')}"
                lines.append(
                    f"| {kind} | {beam} | {name} | {fnum(r.get('decode_sent_s'), 1)} | {fnum(r.get('decode_tok_s'))} | "
                    f"{fnum(r.get('decode_wall_s'), 2)} | {fnum(r.get('peak_rss_mb'))} | "
                    f"{ratio(o32.get('decode_sent_s'), r.get('decode_sent_s'))} | "
                    f"{ratio(o8.get('decode_sent_s'), r.get('decode_sent_s'))} | "
                    f"{ratio(o32.get('peak_rss_mb'), r.get('peak_rss_mb'))} |"
                )
    lines.append("")

    lines += batch_table(results, args)
    lines += pair_table(results, args)
    scaling = [r for r in results if r.get("phase") == "decode" and " len" in r["label"]]
    if scaling:
        lines += [
            "## Cost against length (Transformer, beam 5, input and forced output of N tokens)",
            "",
            "| decoder | " + " | ".join(f"N={n}: ms/sentence (ms/token)" for n in args.lengths) + " |",
            "|---|" + "---|" * len(args.lengths),
        ]
        names: dict[str, dict[int, dict[str, str]]] = {}
        for r in scaling:
            n = int(r["min_len"])
            name = r["label"].split(" len")[0].split(" decode")[0]  # "fairseq len50 decode ..." -> "fairseq"
            if r.get("peer") == "seq2seq":
                name = "seq2seq"
            name += f" {r['compute_type']}" if r.get("compute_type") else ""
            names.setdefault(name, {})[n] = r
        for name, by_n in names.items():
            cells = []
            for n in args.lengths:
                r = by_n.get(n)
                if not r:
                    cells.append("-")
                    continue
                ms = 1000.0 / float(r["decode_sent_s"])
                cells.append(f"{ms:.1f} ({ms / n:.2f})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Raw RESULT lines", "", "```"]
    lines += [" ".join(f"{k}={v}" for k, v in r.items()) for r in results]
    lines += ["```", ""]
    return "\n".join(lines)


def batch_table(results: list[dict[str, str]], args: argparse.Namespace) -> list[str]:
    """Transformer beam-5 speed at each batch size, each decoder's best, and the ratio of bests."""
    sweep = [r for r in results if r.get("phase") == "decode" and " batch" in r["label"]]
    if not sweep:
        return []
    lines = [
        f"## Batch size (Transformer, beam 5, forced length {args.out_len})",
        "",
        "The same sentences per batch for both (seq2seq: `--batch-rows` = 5 x sentences, no token "
        "limit). Each decoder's best is compared.",
        "",
        "| decoder | sent/s at each batch size | best | seq2seq best / it |",
        "|---|---|---|---|",
    ]
    best: dict[str, tuple[float, str]] = {}
    cells: dict[str, list[str]] = {}
    for r in sweep:
        compute = "float32" if r.get("compute_type") in ("float32", None) else r["compute_type"]
        name = ("seq2seq " if r.get("peer") == "seq2seq" else "CTranslate2 ") + compute
        size = f"{r['label'].split(' batch')[1].split()[0]} sentences"
        speed = float(r.get("decode_sent_s") or 0)
        cells.setdefault(name, []).append(f"{size}: {speed:,.1f}")
        if speed > best.get(name, (0.0, ""))[0]:
            best[name] = (speed, size)
    for name in sorted(cells):
        compute = name.split()[-1]
        ours = best.get(f"seq2seq {compute}", (0.0, ""))[0]
        mine = name.startswith("seq2seq")
        lines.append(
            f"| {name} | {'; '.join(cells[name])} | {best[name][0]:,.1f} at {best[name][1]} | "
            f"{'' if mine else ratio(str(ours), str(best[name][0]))} |"
        )
    return lines + [""]


def pair_table(results: list[dict[str, str]], args: argparse.Namespace) -> list[str]:
    """The back-to-back int8 pairs: each ratio and their median."""
    speeds: dict[str, dict[str, float]] = {}
    for r in results:
        m = re.search(r" pair(\d+)", r["label"]) if r.get("phase") == "decode" else None
        if m:
            speeds.setdefault(m.group(1), {})["ours" if r.get("peer") == "seq2seq" else "ct2"] = float(
                r["decode_sent_s"]
            )
    pairs = [(p["ours"], p["ct2"]) for _, p in sorted(speeds.items()) if len(p) == 2]
    if not pairs:
        return []
    ratios = sorted(o / c for o, c in pairs)
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else sum(ratios[len(ratios) // 2 - 1 :][:2]) / 2
    return [
        f"## int8 back to back (Transformer, beam 5, forced length {args.out_len}, {len(pairs)} pairs)",
        "",
        "| pair | seq2seq int8 sent/s | CTranslate2 int8 sent/s | seq2seq / CTranslate2 |",
        "|---|---|---|---|",
        *[f"| {i + 1} | {o:,.1f} | {c:,.1f} | {o / c:.2f}x |" for i, (o, c) in enumerate(pairs)],
        f"| median | | | **{median:.2f}x** |",
        "",
    ]


def _kind(row: dict[str, str]) -> str:
    model = row.get("model", "")
    return "transformer" if model.startswith("transformer") else "gru"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.system()} {platform.release()}"
    )


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-raw",
        type=Path,
        default=REPO.parent / "shared" / "data" / "multi30k",
        help="raw Multi30k folder ({train,test2016}.{de,en})",
    )
    p.add_argument("--peers-root", type=Path, default=Path(os.environ.get("PEERS_ROOT", "/tmp/peers")))
    p.add_argument("--data-spm", type=Path, default=None, help="default: PEERS_ROOT/data")
    p.add_argument("--work", type=Path, default=None, help="default: PEERS_ROOT/work")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", nargs="+", default=["transformer", "gru"], choices=["transformer", "gru"])
    p.add_argument(
        "--only",
        nargs="+",
        default=["train", "decode", "batches", "pairs", "lengths"],
        choices=["train", "decode", "batches", "pairs", "lengths"],
    )
    p.add_argument("--skip-peers-train", action="store_true", help="reuse the peers' models in WORK")
    p.add_argument("--updates", type=int, default=150)
    p.add_argument("--joey-updates", type=int, default=100, help="JoeyNMT trains at <1k tok/s here")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--out-len", type=int, default=20, help="forced output length when decoding test2016")
    p.add_argument(
        "--batch-sentences",
        type=int,
        nargs="+",
        default=[32, 64, 128, 256],
        help="sentences per batch in the batch-size sweep",
    )
    p.add_argument(
        "--ct2-batch",
        type=int,
        default=128,
        help="CTranslate2's sentences per batch in the main table and the pairs (its best in the sweep)",
    )
    p.add_argument("--pairs", type=int, default=7, help="back-to-back int8 runs of seq2seq and CTranslate2")
    p.add_argument("--lengths", type=int, nargs="+", default=[10, 50, 100, 200])
    p.add_argument("--length-sentences", type=int, default=100)
    p.add_argument("--results", type=Path, default=HERE / "results")
    args = p.parse_args()
    args.data_spm = args.data_spm or args.peers_root / "data"
    args.work = args.work or args.peers_root / "work"
    args.work.mkdir(parents=True, exist_ok=True)
    for need in (args.data_raw / "test2016.de", args.data_spm / "spm.model"):
        if not need.exists():
            sys.exit(f"run.py: {need} is missing; see benchmarks/README.md (prepare_data.sh, --data-raw)")

    bench = Bench(args)
    if "train" in args.only:
        bench.train()
    if "decode" in args.only:
        bench.decode()
    if "batches" in args.only:
        bench.batches()
    if "pairs" in args.only:
        bench.pairs()
    if "lengths" in args.only:
        bench.lengths()
    text = report(bench.results, args)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", platform.node() or "host")
    path = args.results / f"{datetime.datetime.now():%Y-%m-%d-%H%M}-{host}.md"
    path.write_text(text, encoding="utf-8")
    print(f"[bench] saved {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
