"""Streaming translation: peak memory and speed against input size (issue 18). A script that
prints figures, not a test.

A tiny Transformer (d_model 64, 1+1 layers, a 1,000-piece SentencePiece model) is trained for
a few updates on Multi30k (or ``--checkpoint`` is used), then ``seq2seq translate`` turns inputs
of each size (Multi30k's test2016.de repeated: the same sentences, so the same lengths and speed
at any size) into ``--output`` files, greedy, with outputs capped at ``--out-len`` tokens (an
untrained model babbles to its length cap; the cap keeps the decoding cost per line fixed).
Figures per run: wall time, CPU time (user + system, from ``wait4``: the speed figure on a
shared machine), and the process's peak RSS (``wait4``); the output has as many lines as the
input (checked).

``--windows`` also runs one input size with several ``--window`` values (throughput against
window size). ``--batching FILE`` only counts, without decoding, the batches and the padding that
each window size gives FILE's lines (what windows cost, independent of the machine's load).
``--compare TREE`` runs the same command with another checkout of seq2seq on ``PYTHONPATH``
(e.g. the commit before streaming, exported with ``git archive COMMIT seq2seq | tar -x -C TREE``)
at the sizes of ``--compare-sizes``: that code reads the whole input into memory.

    python benchmarks/translate_stream.py --sizes 10000 200000 1000000
    python benchmarks/translate_stream.py --sizes 10000 200000 --compare /tmp/before --compare-sizes 10000 200000
    python benchmarks/translate_stream.py --batching ../shared/data/multi30k/train.de
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]


def train_tiny(data: Path, work: Path) -> Path:
    """A Transformer trained for 30 updates on Multi30k: enough to read German, not to translate."""
    best = work / "tiny" / "best"
    if best.is_dir():
        return best
    config = work / "tiny.yaml"
    config.write_text(
        f"data: {{path: {data}, format: text, src_lang: de, tgt_lang: en, train: train, valid: ''}}\n"
        "tokenizer: {model_type: bpe, vocab_size: 1000, joint: true}\n"
        "model: {encoder: transformer, decoder: transformer, d_model: 64, heads: 4, ffn_dim: 128, "
        "enc_layers: 1, dec_layers: 1, dropout: 0.0}\n"
        f"train: {{output_dir: {work / 'tiny'}, precision: fp32, device: cpu, max_tokens: 4096, max_steps: 30, "
        "valid_every: 0, valid_bleu: false, progress: false, keep_last: 0, warmup_steps: 5}\n",
        encoding="utf-8",
    )
    subprocess.run(
        [sys.executable, "-m", "seq2seq", "train", str(config)],
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return best


def write_input(source: Path, work: Path, lines: int) -> Path:
    """``work/inN.de``: ``source``'s lines repeated to ``lines`` lines."""
    path = work / f"in{lines}.de"
    if path.is_file():
        return path
    text = source.read_text(encoding="utf-8").splitlines()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            f.write(text[i % len(text)] + "\n")
    return path


def run(
    checkpoint: Path, source: Path, output: Path, args: argparse.Namespace, tree: Path, window: Optional[int]
) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in KB) of one ``seq2seq translate``."""
    command = [
        sys.executable,
        "-m",
        "seq2seq",
        "translate",
        "--checkpoint",
        str(checkpoint),
        "--device",
        "cpu",
        "-i",
        str(source),
        "-o",
        str(output),
        "--quiet",
        "--beam",
        "1",
        "--max-len-a",
        "0",
        "--max-len-b",
        str(args.out_len),
    ]
    if window is not None:
        command += ["--window", str(window)]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": str(args.threads)}
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=tree)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"translate failed ({proc.returncode}): {' '.join(command)}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def batching_cost(checkpoint: Path, source: Path, windows: list[int], beams: list[int]) -> None:
    """Batches and padding against window size, counted (not timed: the same on any machine).

    Lines are sorted by length within a window only, so a smaller window gives batches of more
    mixed lengths (padding) and more partly filled batches (each last batch of a window). For each
    window size and beam: the number of batches, the source tokens fed including padding against
    the real ones, and the mean sentences per batch, at the checkpoint's batch settings."""
    from seq2seq.infer.translator import Translator, line_windows

    translator = Translator.from_checkpoint(checkpoint, device="cpu")
    lines = source.read_text(encoding="utf-8").splitlines()
    print(
        f"\nBatching of {len(lines):,} lines of {source.name} ({translator.search.batch_tokens:,} tokens, "
        f"{translator.search.batch_rows} rows per batch)"
    )
    print("| beam | window | batches | padded / real source tokens | sentences per batch |\n|---:|---:|---:|---:|---:|")
    for beam in beams:
        for window in [*windows, len(lines)]:
            batches = padded = real = 0
            for chunk in line_windows(lines, window):
                ids = translator.read_sources(chunk)[1]
                for batch in translator.batches(ids, beam):
                    batches += 1
                    padded += len(batch) * max(len(ids[i]) for i in batch)
                    real += sum(len(ids[i]) for i in batch)
            label = "all" if window == len(lines) else f"{window:,}"
            print(f"| {beam} | {label} | {batches:,} | {padded / real:.3f} | {len(lines) / batches:.0f} |")


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "multi30k")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "seq2seq-translate-stream")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: train a tiny model")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000, 1_000_000])
    parser.add_argument("--out-len", type=int, default=8, help="output tokens per line (default 8)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--windows", type=int, nargs="*", default=[], help="also run --window-size lines with each of these windows"
    )
    parser.add_argument("--window-size", type=int, default=20_000)
    parser.add_argument(
        "--batching",
        type=Path,
        default=None,
        metavar="FILE",
        help="only count batches and padding of FILE's lines against --windows (no decoding)",
    )
    parser.add_argument("--compare", type=Path, default=None, help="another seq2seq tree to run as well")
    parser.add_argument("--compare-sizes", type=int, nargs="*", default=[10_000, 200_000])
    args = parser.parse_args()

    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint or train_tiny(args.data, work)
    if args.batching:
        batching_cost(checkpoint, args.batching, args.windows or [250, 500, 1000, 2000, 5000, 10000], [1, 5])
        return
    source = args.data / "test2016.de"
    rows = []
    jobs = [(size, REPO, "streaming", None) for size in args.sizes]
    if args.compare:
        jobs = [
            job
            for size in sorted(set(args.sizes) | set(args.compare_sizes))
            for job in ([(size, args.compare, "before", None)] if size in args.compare_sizes else [])
            + ([(size, REPO, "streaming", None)] if size in args.sizes else [])
        ]
    jobs += [(args.window_size, REPO, f"window {w}", w) for w in args.windows]
    for size, tree, label, window in jobs:
        inp = write_input(source, work, size)
        out = work / f"out{size}.en"
        seconds, cpu, rss = run(checkpoint, inp, out, args, tree, window)
        if count_lines(out) != size:
            raise SystemExit(f"{out} has {count_lines(out)} lines, expected {size}")
        rows.append((label, size, seconds, cpu, rss / 1024))
        print(
            f"{label:>12} {size:>10,} lines  {seconds:8.1f} s wall  {cpu:8.1f} s CPU  "
            f"{size / cpu:8.0f} lines per CPU s  peak RSS {rss / 1024:7.0f} MB",
            flush=True,
        )
    # CPU time (user + system, all threads) is the speed figure: on a shared machine wall time
    # measures the neighbours as much as the code.
    print("\n| code | lines | wall time | CPU time | lines per CPU second | peak RSS |\n|---|---:|---:|---:|---:|---:|")
    for label, size, seconds, cpu, rss in rows:
        print(f"| {label} | {size:,} | {seconds:.1f} s | {cpu:.1f} s | {size / cpu:,.0f} | {rss:,.0f} MB |")


if __name__ == "__main__":
    main()
