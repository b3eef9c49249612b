"""Semantic hashing on SST-2: precision@100 of Hamming ranking, by label agreement.

    python recipes/autoencoder/hashing.py --bits 16 32 64 --dae runs/autoencoder/sst2_dae/best

For each code size, trains a binary-code autoencoder on the pretraining text (sst2_dae.yaml
with model.bottleneck=binary, context_dim = bits; --updates each), then encodes the corpus (all
67k labelled training phrases: train_100.tsv + select.tsv) and the queries (the 872 dev
sentences). For every query the 100 corpus lines nearest in Hamming distance are retrieved;
precision@100 is the share with the query's label (as the semantic-hashing literature counts).
Baselines: random codes of the same size, and cosine similarity on the real-valued context
vectors of the denoising autoencoder (--dae). Also timed: hash-table lookup within radius 2,
exhaustive Hamming ranking and cosine ranking over the whole corpus, per query.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import train_or_reuse  # noqa: E402

from seq2seq.config import load_config  # noqa: E402
from seq2seq.data.loading import load_labelled  # noqa: E402
from seq2seq.infer.autoencoder import Autoencoder  # noqa: E402
from seq2seq.infer.hashing import CodeIndex  # noqa: E402


def precision_at(ranked: list[list[int]], corpus_labels: np.ndarray, query_labels: list[str], k: int) -> float:
    hits = [np.mean(corpus_labels[r[:k]] == q) for r, q in zip(ranked, query_labels)]
    return 100.0 * float(np.mean(hits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--dae", default="runs/autoencoder/sst2_dae/best", help="real-valued autoencoder (cosine)")
    ap.add_argument("--data", default="runs/autoencoder/data")
    ap.add_argument("--output", default="runs/autoencoder/hashing")
    ap.add_argument("--updates", type=int, default=1500)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(HERE / "sst2_classifier.yaml", [f"data.path={args.data}"])
    train, select = load_labelled(cfg.data, "train_100.tsv"), load_labelled(cfg.data, "select.tsv")
    corpus, corpus_labels = train.src + select.src, np.array(train.tgt + select.tgt)
    dev = load_labelled(cfg.data, "dev.tsv")
    rows = []

    def timed_ranking(index: CodeIndex, queries: np.ndarray, how: str) -> tuple[list[list[int]], float]:
        t0 = time.perf_counter()
        if how == "cosine":
            ranked = [[i for i, _ in index.nearest(q, args.k)] for q in queries]
        else:
            ranked = [[i for i, _ in index.rank(q, args.k)] for q in queries]
        return ranked, 1000.0 * (time.perf_counter() - t0) / len(queries)

    rng = np.random.default_rng(1)
    for bits in args.bits:
        run = out / f"binary{bits}"
        seconds = train_or_reuse(
            HERE / "sst2_dae.yaml",
            run,
            [
                f"data.path={args.data}",
                "model.bottleneck=binary",
                f"model.context_dim={bits}",
                f"train.max_steps={args.updates}",
                *args.set,
            ],
        )
        ae = Autoencoder.from_checkpoint(run / "best", device="cpu")
        t0 = time.perf_counter()
        codes = ae.codes(corpus)
        encode_ms = 1000.0 * (time.perf_counter() - t0) / len(corpus)
        index = CodeIndex.from_codes(codes, corpus)
        queries = ae.codes(dev.src)
        ranked, rank_ms = timed_ranking(index, queries, "hamming")
        t0 = time.perf_counter()
        found = [len(index.lookup(q, 2)) for q in queries]
        lookup_ms = 1000.0 * (time.perf_counter() - t0) / len(queries)
        random_index = CodeIndex.from_codes(rng.random(codes.shape) < 0.5, corpus)
        random_ranked, _ = timed_ranking(random_index, rng.random(queries.shape) < 0.5, "hamming")
        rows.append(
            {
                "bits": bits,
                "precision": precision_at(ranked, corpus_labels, dev.tgt, args.k),
                "random_precision": precision_at(random_ranked, corpus_labels, dev.tgt, args.k),
                "bits_on": float(codes.mean()),
                "distinct_codes": len({c.tobytes() for c in np.packbits(codes, axis=1)}),
                "rank_ms_per_query": rank_ms,
                "lookup_r2_ms_per_query": lookup_ms,
                "lookup_r2_mean_matches": float(np.mean(found)),
                "encode_ms_per_line": encode_ms,
                "train_seconds": seconds,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    dae = Autoencoder.from_checkpoint(args.dae, device="cpu")
    vectors = CodeIndex.from_vectors(dae.encode(corpus), corpus)
    ranked, cos_ms = timed_ranking(vectors, dae.encode(dev.src), "cosine")
    cosine = {
        "context_dim": dae.context_dim,
        "precision": precision_at(ranked, corpus_labels, dev.tgt, args.k),
        "rank_ms_per_query": cos_ms,
    }
    print(json.dumps({"cosine": cosine}), flush=True)
    result = {
        "corpus_lines": len(corpus),
        "queries": len(dev.src),
        "k": args.k,
        "label_share_in_corpus": {str(v): float(np.mean(corpus_labels == v)) for v in np.unique(corpus_labels)},
        "binary": rows,
        "cosine": cosine,
    }
    (out / "hashing.json").write_text(json.dumps(result, indent=2) + "\n")
    table = [
        f"| code | precision@{args.k} (%) | random codes (%) | ranking ms/query | radius-2 lookup ms/query |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    table += [
        f"| {r['bits']} bits | {r['precision']:.1f} | {r['random_precision']:.1f} | {r['rank_ms_per_query']:.2f} "
        f"| {r['lookup_r2_ms_per_query']:.2f} |"
        for r in rows
    ]
    table.append(
        f"| {cosine['context_dim']}-d real vectors, cosine | {cosine['precision']:.1f} | | "
        f"{cosine['rank_ms_per_query']:.2f} | |"
    )
    (out / "hashing.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
