"""Which on-disk format for the token store: flat memory-mapped arrays or Hugging Face
``datasets``' Arrow cache? A script that prints figures (not a test).

For one parallel corpus and one SentencePiece model it builds both (same pool size), then, each
in a fresh process, opens it, gets the two length arrays the batch sampler needs, and reads
random examples as training does (batches of 100 random rows, ids as Python lists). It prints
build time, open time, microseconds per example and the reading process's resident size
(after its imports, after opening, after the reads: memory-mapped pages that were read count).

    python benchmarks/store_format.py --src c.de --tgt c.en --spm spm.model --workers 2
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_flat(args: argparse.Namespace, out: Path) -> float:
    from seq2seq.config import DataConfig
    from seq2seq.data.loading import open_parallel
    from seq2seq.data.store_build import open_store
    from seq2seq.data.store_key import store_spec
    from seq2seq.data.tokenizer import SpmTokenizer, TokenizerPair

    tok = TokenizerPair(SpmTokenizer.load(args.spm))
    src = Path(args.src)
    cfg = DataConfig(format="text", path=str(src.parent), src_lang=src.suffix[1:], tgt_lang=Path(args.tgt).suffix[1:])
    source = open_parallel(cfg, src.stem)
    start = time.time()
    store = open_store(
        out, store_spec("pairs", source, {}, "none", tok), source, tok, workers=args.workers, progress=False
    )
    (out / "path").write_text(str(store.path))
    return time.time() - start


_SP = None


def _arrow_encode(batch: dict) -> dict:
    global _SP
    if _SP is None:
        import sentencepiece

        _SP = sentencepiece.SentencePieceProcessor(model_file=ARGS_SPM)
    return {"src_ids": _SP.encode(batch["src"], num_threads=1), "tgt_ids": _SP.encode(batch["tgt"], num_threads=1)}


ARGS_SPM = ""


def _pairs(src: str, tgt: str):  # noqa: ANN202
    with open(src, encoding="utf-8") as a, open(tgt, encoding="utf-8") as b:
        for s, t in zip(a, b):
            yield {"src": s.rstrip("\n"), "tgt": t.rstrip("\n")}


def build_arrow(args: argparse.Namespace, out: Path) -> float:
    import datasets

    datasets.disable_progress_bars()
    start = time.time()
    ds = datasets.Dataset.from_generator(
        _pairs, gen_kwargs={"src": args.src, "tgt": args.tgt}, cache_dir=str(out / "hf")
    )
    features = datasets.Features(
        {"src_ids": datasets.Sequence(datasets.Value("uint16")), "tgt_ids": datasets.Sequence(datasets.Value("uint16"))}
    )
    ds = ds.map(
        _arrow_encode,
        batched=True,
        batch_size=10_000,
        num_proc=args.workers,
        remove_columns=["src", "tgt"],
        features=features,
    )
    ds.save_to_disk(str(out / "ds"), num_proc=1)
    return time.time() - start


def read(kind: str, where: Path, batches: int) -> dict:
    """Open, lengths, random reads; runs in its own process (imports are not timed)."""
    if kind == "flat":
        from seq2seq.data.store import TokenStore
    else:
        import datasets
        import pyarrow.compute as pc
    imported = _rss()
    start = time.time()
    if kind == "flat":
        store = TokenStore(Path((where / "path").read_text()))
        lengths = store.src_lengths, store.tgt_lengths
        n = store.size

        def get(rows: list[int]) -> list:
            return list(zip(store.sources(rows), store.targets(rows)))  # as training reads a batch
    else:
        ds = datasets.load_from_disk(str(where / "ds"))
        table = ds.data.table
        lengths = (pc.list_value_length(table["src_ids"]).to_numpy(), pc.list_value_length(table["tgt_ids"]).to_numpy())
        n = len(ds)

        def get(rows: list[int]) -> list:
            got = ds[rows]
            return list(zip(got["src_ids"], got["tgt_ids"]))

    opened = time.time() - start
    after_open = _rss()
    rng = np.random.default_rng(0)
    start, cpu = time.time(), time.process_time()
    for _ in range(batches):
        get(rng.integers(0, n, 100).tolist())
    per_example = (time.time() - start) / (batches * 100) * 1e6
    cpu_per_example = (time.process_time() - cpu) / (batches * 100) * 1e6
    return {
        "open_s": round(opened, 3),
        "us_per_example": round(per_example, 2),
        "cpu_us_per_example": round(cpu_per_example, 2),
        "pairs": n,
        "tokens": int(sum(int(x.sum()) for x in lengths)),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "imports_rss_mb": imported,
        "open_rss_mb": after_open,
        "read_rss_mb": _rss(),
    }


def _rss() -> int:
    """The resident size now, in MB."""
    return int([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmRSS")][0]) // 1024


def main() -> None:
    global ARGS_SPM
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    p.add_argument("--spm", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=2000)
    p.add_argument("--read", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    ARGS_SPM = args.spm
    if args.read:
        print(json.dumps(read(args.read[0], Path(args.read[1]), args.batches)))
        return
    root = Path(tempfile.mkdtemp(prefix="store-format-"))
    try:
        for kind, build in (("flat", build_flat), ("arrow", build_arrow)):
            where = root / kind
            where.mkdir()
            seconds = build(args, where)
            size = sum(f.stat().st_size for f in where.rglob("*") if f.is_file()) / 2**20
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--src",
                    args.src,
                    "--tgt",
                    args.tgt,
                    "--spm",
                    args.spm,
                    "--batches",
                    str(args.batches),
                    "--read",
                    kind,
                    str(where),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            print(
                f"{kind:6s} build {seconds:6.1f} s  disk {size:6.0f} MB  open+lengths {figures['open_s']:6.3f} s  "
                f"read {figures['us_per_example']:6.2f} us/example ({figures['cpu_us_per_example']:.2f} CPU)  "
                f"reader RSS: {figures['imports_rss_mb']} MB after imports, "
                f"+{figures['open_rss_mb'] - figures['imports_rss_mb']} MB opened, "
                f"+{figures['read_rss_mb'] - figures['imports_rss_mb']} MB after the reads  "
                f"({figures['pairs']:,} pairs, {figures['tokens']:,} tokens)",
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
