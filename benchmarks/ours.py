"""seq2seq's side of the speed benchmark: the peers' model, data and budget, our toolkit.

Phases (each prints one ``RESULT key=value ...`` line, the same keys as the peer scripts):

    python benchmarks/ours.py train  --model transformer|gru --work DIR --data-raw DIR --spm FILE
    python benchmarks/ours.py decode --model transformer|gru --work DIR --src FILE [--ref FILE]
                                     [--beam 5] [--min-len 0] [--max-len 100] [--quantize int8]
                                     [--precision fp32|bf16|fp16] [--device cpu]

``train`` runs ``seq2seq train`` in a subprocess (under ``/usr/bin/time -v`` for the peak
memory) for ``--updates`` updates with ``--max-tokens`` per batch and no validation, and
reports target tokens per second after ``--warmup`` updates: the mean of the logged
per-interval rates (what the peers' own logs give) and the wall-clock rate. ``decode`` times
``Translator.translate`` on a file in a fresh process (model load excluded from
``decode_sent_s``, included in ``decode_wall_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
from seq2seq.config import SearchConfig  # noqa: E402 (after the path set-up)

# The peers' shared model (benchmarks/peers/README.md): Transformer 3+3, d 256, 4 heads, FFN
# 1024, dropout 0.1, tied embeddings; GRU 2+2, hidden 256, attention. Adam (0.9, 0.98), lr 1e-3
# after 100 warm-up updates then inverse square root, label smoothing 0.1, no clipping.
MODELS = {
    "transformer": {
        "encoder": "transformer",
        "decoder": "transformer",
        "attention": "multihead",
        "d_model": 256,
        "enc_layers": 3,
        "dec_layers": 3,
        "heads": 4,
        "ffn_dim": 1024,
        "dropout": 0.1,
        "attention_dropout": 0.1,
    },
    "gru": {
        "encoder": "gru",
        "decoder": "gru",
        "attention": "luong",
        "d_model": 256,
        "enc_layers": 2,
        "dec_layers": 2,
        "dropout": 0.1,
        "bidirectional": False,
    },
}


def config(args: argparse.Namespace) -> dict:
    return {
        "data": {
            "format": "text",
            "path": str(args.data_raw),
            "src_lang": "de",
            "tgt_lang": "en",
            "train": "train",
            "valid": "",
            "max_src_tokens": 1024,
            "max_tgt_tokens": 1024,
            "cache_dir": str(args.work / "cache"),  # not beside the data set, which may be shared
        },
        "tokenizer": {"model": str(args.spm), "joint": True},
        "model": {**MODELS[args.model], "share_embeddings": True, "tie_embeddings": True},
        "train": {
            "output_dir": str(args.work / args.model),
            "seed": 1,
            "precision": args.precision,
            "threads": args.threads,
            "max_tokens": args.max_tokens,
            "optimizer": "adam",
            "lr": 1e-3,
            "betas": [0.9, 0.98],
            "weight_decay": 0.0,
            "scheduler": "inverse_sqrt",
            "warmup_steps": 100,
            "label_smoothing": 0.1,
            "clip_norm": 0.0,
            "max_steps": args.updates,
            "valid_every": 0,
            "log_every": args.log_every,
            "keep_last": 0,
            "progress": False,
            "max_epochs": 1000,
        },
        "search": {"beam": 5, "max_len_a": 0.0, "max_len_b": 100},
    }


def time_v(log: Path) -> dict[str, float]:
    """Peak RSS (MB) and wall seconds from a ``/usr/bin/time -v`` log."""
    text = log.read_text()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time.*: ([\d:.]+)", text).group(1)
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    return {"peak_rss_mb": rss, "wall_s": seconds}


def run_timed(command: list[str], timing: Path, **kwargs) -> dict[str, float]:
    """Run ``command`` (check=True) and return its peak RSS (MB) and wall seconds: from GNU time
    where it is installed, else from the kernel's accounting of finished children (the GPU image
    has no ``/usr/bin/time``; the benchmark runs one child at a time, so the maximum is its own)."""
    if Path("/usr/bin/time").is_file():
        subprocess.run(["/usr/bin/time", "-v", "-o", str(timing), *command], check=True, **kwargs)
        return time_v(timing)
    import resource

    started = time.time()
    subprocess.run(command, check=True, **kwargs)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"peak_rss_mb": peak_kb / 1024, "wall_s": time.time() - started}


def cmd_train(args: argparse.Namespace) -> None:
    run = args.work / args.model
    if run.exists():
        import shutil

        shutil.rmtree(run)
    args.work.mkdir(parents=True, exist_ok=True)
    cfg_path = args.work / f"{args.model}.json"
    cfg_path.write_text(json.dumps(config(args), indent=1))
    timing = args.work / f"{args.model}.train.time"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    with open(args.work / f"{args.model}.train.log", "w") as log:
        t = run_timed(
            [sys.executable, "-m", "seq2seq", "train", str(cfg_path)],
            timing,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    rows = [r for r in records if r.get("event") == "train"]
    base = ([{"step": 0, "seconds": 0.0}] + [r for r in rows if r["step"] <= args.warmup])[-1]
    post = [r for r in rows if r["step"] > args.warmup]
    if not post:  # e.g. --updates 3 only to make a checkpoint: nothing logged after the warm-up
        print(f"no throughput logged after update {args.warmup} (--log-every {args.log_every}); checkpoint in {run}")
        return
    peer_style = sum(r["tokens_per_s"] for r in post) / len(post)
    tokens, prev = 0.0, base
    for r in post:  # rate x interval = tokens of the interval
        tokens += r["tokens_per_s"] * (r["seconds"] - prev["seconds"])
        prev = r
    wall_rate = tokens / (post[-1]["seconds"] - base["seconds"])
    print(
        f"RESULT peer=seq2seq model={args.model} phase=train precision={args.precision} "
        f"train_tok_s={peer_style:.0f} train_tok_s_wall={wall_rate:.0f} updates={rows[-1]['step']} "
        f"train_wall_s={t['wall_s']:.2f} train_peak_rss_mb={t['peak_rss_mb']:.0f}",
        flush=True,
    )


COMPUTE_TYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # CTranslate2's names


def cmd_decode(args: argparse.Namespace) -> None:
    tag = f"{args.tag}." if args.tag else ""
    compute = args.quantize or args.precision
    out = args.work / f"{args.model}.{tag}hyp.b{args.beam}.{args.min_len}-{args.max_len}.{compute}.txt"
    timing = out.with_suffix(".time")
    report = out.with_suffix(".json")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    worker = [
        sys.executable,
        str(Path(__file__)),
        "_worker",
        str(args.work / args.model / "last"),
        str(args.src),
        str(out),
        str(report),
        str(args.beam),
        str(args.min_len),
        str(args.max_len),
        args.quantize or "",
        args.precision,
        args.device,
        str(args.threads),
        str(args.batch_tokens),
        str(args.batch_rows),
    ]
    t = run_timed(worker, timing, env=env)
    r = json.loads(report.read_text())
    hyps = out.read_text(encoding="utf-8").splitlines()
    words = sum(len(h.split()) for h in hyps) / max(1, len(hyps))
    bleu = "nan"
    if args.ref:
        import sacrebleu

        refs = Path(args.ref).read_text(encoding="utf-8").splitlines()
        bleu = f"{sacrebleu.corpus_bleu(hyps, [refs]).score:.2f}"
    print(
        f"RESULT peer=seq2seq model={args.model} phase=decode beam={args.beam} min_len={args.min_len} "
        f"max_len={args.max_len} compute_type={COMPUTE_TYPES.get(compute, compute)} device={args.device} "
        f"n_sent={r['n_sent']} "
        f"decode_sent_s={r['n_sent'] / r['seconds']:.2f} decode_tok_s={r['tokens'] / r['seconds']:.1f} "
        f"decode_wall_s={t['wall_s']:.2f} peak_rss_mb={t['peak_rss_mb']:.0f} bleu={bleu} hyp_words={words:.2f} "
        f"batch_tokens={args.batch_tokens} batch_rows={args.batch_rows} "
        f"sents_per_batch={r['n_sent'] / r['batches']:.1f}",
        flush=True,
    )


def worker(argv: list[str]) -> None:
    """In the timed process: load, translate, write, report the translation time."""
    ckpt, src, out, report, beam, min_len, max_len, quantize, precision, device, threads, batch_tokens, batch_rows = (
        argv
    )
    import torch

    torch.set_num_threads(int(threads))
    from seq2seq.infer.translator import Translator, encode_sources

    translator = Translator.from_checkpoint(ckpt, device=device, quantize=quantize or None, precision=precision)
    translator.search.min_len = int(min_len)
    translator.search.max_len_a, translator.search.max_len_b = 0.0, int(max_len)
    lines = Path(src).read_text(encoding="utf-8").splitlines()
    start = time.perf_counter()
    hyps = translator.translate_hypotheses(
        lines, beam=int(beam), batch_tokens=int(batch_tokens), batch_rows=int(batch_rows)
    )
    seconds = time.perf_counter() - start
    texts = [h[0][0] for h in hyps]
    tokens = sum(len(translator.tokenizers.tgt.encode(t)) for t in texts)
    ids = encode_sources(translator.tokenizers.src, lines, translator.max_src_tokens)
    batches = len(translator.batches(ids, int(beam), int(batch_tokens), int(batch_rows)))  # as translated
    Path(out).write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    Path(report).write_text(
        json.dumps({"n_sent": len(lines), "seconds": seconds, "tokens": tokens, "batches": batches})
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker(sys.argv[2:])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="phase", required=True)
    for name in ("train", "decode"):
        s = sub.add_parser(name)
        s.add_argument("--model", choices=sorted(MODELS), default="transformer")
        s.add_argument("--work", type=Path, default=Path("/tmp/peers/work/seq2seq"))
        s.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
        # The toolkit's defaults, not the checkpoint's search settings (older runs stored others).
        s.add_argument(
            "--batch-tokens",
            type=int,
            default=SearchConfig.batch_tokens,
            help="source tokens per decoding batch (default: SearchConfig's)",
        )
        s.add_argument(
            "--batch-rows",
            type=int,
            default=SearchConfig.batch_rows,
            help="hypotheses (sentences x beam) per decoding batch (default: SearchConfig's)",
        )
    t = sub.choices["train"]
    t.add_argument("--data-raw", type=Path, required=True, help="raw Multi30k: train.de, train.en")
    t.add_argument("--spm", type=Path, required=True, help="the shared SentencePiece model")
    t.add_argument("--updates", type=int, default=150)
    t.add_argument("--warmup", type=int, default=20)
    t.add_argument(
        "--log-every",
        type=int,
        default=int(os.environ.get("LOG_INTERVAL", "10")),
        help="updates per logged throughput interval (the peers log every 10)",
    )
    t.add_argument("--max-tokens", type=int, default=4096)
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    d = sub.choices["decode"]
    d.add_argument("--src", type=Path, required=True, help="raw source text, one sentence per line")
    d.add_argument("--ref", type=Path, help="raw reference text (for BLEU)")
    d.add_argument("--beam", type=int, default=5)
    d.add_argument("--min-len", type=int, default=0)
    d.add_argument("--max-len", type=int, default=100)
    d.add_argument("--quantize", choices=["int8", "int8-rows"], default=None)
    d.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    d.add_argument("--device", default="cpu", help="cpu, cuda, ... (the peers' scripts decode on CPU)")
    d.add_argument("--tag", default="", help="name part of the output files")
    args = p.parse_args()
    if args.phase == "train" and args.updates <= args.warmup:
        p.error(f"--updates ({args.updates}) must exceed --warmup ({args.warmup}): throughput is measured after it")
    {"train": cmd_train, "decode": cmd_decode}[args.phase](args)


if __name__ == "__main__":
    main()
