"""Offline decoding speed by batch size: what a server can reach with the batches its clients allow.

Prints figures; it is not a test. ``Translator.translate`` is called on consecutive slices of
``--batch`` sentences of ``--src`` (one process, ``--threads`` torch threads, model load and a
warm-up call excluded). A server with 32 clients that each wait for their answer never holds
more than 32 texts, so its throughput is bounded by the batch-30 row, not by the offline rate
at the default batch size (``serve_load.py``'s "x offline").

    python benchmarks/decode_batch_sizes.py --checkpoint runs/NAME/best --src test2016.de \\
        --quantize int8 --force-len 20 --threads 1 --batches 15 30 100
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--src", required=True, help="one sentence per line")
    p.add_argument("--sentences", type=int, default=300, help="the first N non-blank lines of --src")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 15, 30, 100, 300])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--quantize", choices=["int8", "int8-rows"], default=None)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--force-len", type=int, default=0, help="force every output to N tokens (untrained models)")
    p.add_argument("--max-len-a", type=float, default=None, help="outputs at most A x source tokens + B")
    p.add_argument("--max-len-b", type=int, default=None, help="(default: the checkpoint's A and B)")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    from seq2seq import Translator
    from seq2seq.cli.io import saved_config

    search = dataclasses.replace(saved_config(args.checkpoint).search, beam=args.beam)
    if args.force_len:
        search = dataclasses.replace(search, min_len=args.force_len, max_len_a=0.0, max_len_b=args.force_len)
    for name in ("max_len_a", "max_len_b"):
        if getattr(args, name) is not None and not args.force_len:
            search = dataclasses.replace(search, **{name: getattr(args, name)})
    translator = Translator.from_checkpoint(args.checkpoint, device="cpu", search=search, quantize=args.quantize)
    with open(args.src, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()][: args.sentences]  # blank lines skipped
    translator.translate(lines[:20])  # warm-up
    print(
        f"# {len(lines)} sentences of {args.src}; beam {args.beam}; {args.quantize or 'fp32'}; "
        f"{torch.get_num_threads()} threads"
    )
    print("| batch | sentences/s | ms per batch |\n|---:|---:|---:|")
    for size in args.batches:
        start = time.perf_counter()
        for i in range(0, len(lines), size):
            translator.translate(lines[i : i + size])
        elapsed = time.perf_counter() - start
        print(f"| {size} | {len(lines) / elapsed:.1f} | {1000 * elapsed / -(-len(lines) // size):.0f} |")


if __name__ == "__main__":
    main()
