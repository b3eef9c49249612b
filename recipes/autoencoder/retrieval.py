"""Caption retrieval: do sentence codes find the other captions of the same image?

    python recipes/autoencoder/retrieval.py --bits 16 32 64 \\
        --checkpoint dae=runs/autoencoder/captions/dae64/best --checkpoint para=runs/autoencoder/captions/para64/best

Data: Multi30k Task 2 English (``--data``, see ../shared/data/multi30k-captions/README.md).
Every one of the 5,000 test2016 captions (1,000 images x 5) queries the other 4,999; the
relevant ones are the other four captions of its image. Reported per method: precision@4 (the
share of the 4 nearest that are relevant) and mAP (mean over queries of the average precision
of the full ranking), in %.

Ties (Hamming distances are small integers, so there are many) are broken at random: each
query's candidates are sorted by (distance, a uniform random key), the keys drawn from
``numpy.random.default_rng(SEED)`` with one generator per method, seeded by ``--seed`` and the
method's name (``zlib.crc32``), so a method's numbers do not depend on which others ran. Never
by line number: the five captions of an image are adjacent, so index order would favour them.

Methods (binary ones at every ``--bits``):
- ``random``: random bits (Hamming);
- ``simhash``: sign of the TF-IDF vector projected on random Gaussian hyperplanes (Charikar 2002);
- ``pca-median``: the TF-IDF vector's top principal components, each bit = component > its
  median over the training captions;
- ``tfidf-cosine``: the real-valued TF-IDF vectors, cosine (no bits);
- ``--checkpoint [LABEL=]DIR`` (repeatable): the model's context vector by cosine (for a binary
  bottleneck: the code probabilities) and, with a binary bottleneck, its bits by Hamming.
TF-IDF (scikit-learn's TfidfVectorizer, defaults: lowercased words of 2+ characters, smooth idf,
l2 rows) and PCA are fitted on the 145,000 training captions only, never on test2016.

Writes ``--output``/retrieval.json (every number) and retrieval.md (the table).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------ metrics
def tie_keys(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Uniform random keys that order the candidates at equal distance."""
    return rng.random(shape)


def precision_and_ap(
    dist: np.ndarray, relevant: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per query: precision@k and average precision of the ranking by ``dist`` (Q, N), smaller
    is nearer, ties broken at random; ``relevant`` (Q, N) bool. A candidate that must not be
    retrieved (the query itself) needs ``dist = inf`` and ``relevant = False``: it then ranks
    last and counts for nothing. Queries with no relevant candidate get AP nan.

    The ranking is the sort of the candidates by (distance, random key). Only the ranks of the
    relevant candidates matter, so they are counted instead of sorting everything: the rank of
    a relevant candidate is 1 + the number of candidates before it in that order."""
    keys = tie_keys(dist.shape, rng)
    n_rel = relevant.sum(axis=1)
    width = max(1, int(n_rel.max()))
    # the relevant candidates of each row, padded with a dummy column (masked below)
    idx = np.argsort(~relevant, axis=1, kind="stable")[:, :width]  # (Q, R)
    valid = np.arange(width)[None, :] < n_rel[:, None]
    d_r = np.take_along_axis(dist, idx, axis=1)[:, :, None]  # (Q, R, 1)
    k_r = np.take_along_axis(keys, idx, axis=1)[:, :, None]
    before = (dist[:, None, :] < d_r) | ((dist[:, None, :] == d_r) & (keys[:, None, :] < k_r))
    ranks = np.where(valid, before.sum(axis=2) + 1, np.iinfo(np.int64).max)  # (Q, R)
    ranks = np.sort(ranks, axis=1)
    precision_k = (ranks <= k).sum(axis=1) / k
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(valid, np.arange(1, width + 1)[None, :] / ranks, 0.0)
        ap = terms.sum(axis=1) / n_rel
    return precision_k, np.where(n_rel > 0, ap, np.nan)


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Hamming distances of 0/1 codes, by a ±1 inner product (exact in float32
    for codes up to 2^24 bits)."""
    sa, sb = 2.0 * a.astype(np.float32) - 1.0, 2.0 * b.astype(np.float32) - 1.0
    return (a.shape[1] - sa @ sb.T) / 2.0


def cosine_distance_matrix(a, b) -> np.ndarray:
    """(len(a), len(b)) 1 - cosine similarity; dense arrays or scipy sparse rows."""

    def unit(x):
        if hasattr(x, "multiply"):  # scipy sparse
            norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1))).ravel()
            return x.multiply(1.0 / np.maximum(norms, 1e-12)[:, None]).tocsr()
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    sims = unit(a) @ unit(b).T
    sims = sims.toarray() if hasattr(sims, "toarray") else sims
    return 1.0 - np.asarray(sims)


def evaluate(dist: np.ndarray, groups: np.ndarray, k: int, seed: int, name: str, chunk: int = 250) -> dict:
    """Every item queries all the others (the diagonal is excluded); relevant = same group.
    Mean precision@k and mAP in %."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    n = len(groups)
    p_all, ap_all = [], []
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        d = np.array(dist[rows], dtype=np.float64)
        d[np.arange(len(rows)), rows] = np.inf
        rel = groups[rows][:, None] == groups[None, :]
        rel[np.arange(len(rows)), rows] = False
        p, ap = precision_and_ap(d, rel, k, rng)
        p_all.append(p)
        ap_all.append(ap)
    return {
        f"precision@{k}": 100.0 * float(np.mean(np.concatenate(p_all))),
        "mAP": 100.0 * float(np.nanmean(np.concatenate(ap_all))),
    }


# ------------------------------------------------------------------------ data
def read_captions(path: Path) -> tuple[list[str], np.ndarray]:
    """Captions and their image's number (0, 1, ...) from an IMAGE<TAB>CAPTION file."""
    opener = gzip.open if path.suffix == ".gz" else open
    images: dict[str, int] = {}
    captions, groups = [], []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            image, caption = line.rstrip("\n").split("\t", 1)
            captions.append(caption)
            groups.append(images.setdefault(image, len(images)))
    return captions, np.array(groups)


# ------------------------------------------------------------------------ methods
def classic_methods(train: list[str], test: list[str], bits_list: list[int], seed: int) -> dict:
    """{(method, bits or 0): ('hamming'|'cosine', test representation)} for the baselines."""
    from sklearn.decomposition import PCA
    from sklearn.feature_extraction.text import TfidfVectorizer

    tfidf = TfidfVectorizer()
    x_train = tfidf.fit_transform(train)
    x_test = tfidf.transform(test)
    out: dict = {("tfidf-cosine", 0): ("cosine", x_test)}
    print(f"TF-IDF: {x_train.shape[1]:,} words from {x_train.shape[0]:,} training captions", file=sys.stderr)
    pca = PCA(n_components=max(bits_list), svd_solver="arpack", random_state=seed).fit(x_train)
    p_train, p_test = pca.transform(x_train), pca.transform(x_test)
    for bits in bits_list:
        rng = np.random.default_rng([seed, bits])
        out[("random", bits)] = ("hamming", rng.random((len(test), bits)) < 0.5)
        planes = rng.standard_normal((x_train.shape[1], bits))
        out[("simhash", bits)] = ("hamming", np.asarray(x_test @ planes) > 0)
        median = np.median(p_train[:, :bits], axis=0)
        out[("pca-median", bits)] = ("hamming", p_test[:, :bits] > median)
    return out


def checkpoint_methods(spec: str, test: list[str]) -> dict:
    import torch

    from seq2seq.infer.autoencoder import Autoencoder

    torch.set_num_threads(1)  # a shared machine: more threads only wait on each other

    label, _, directory = spec.rpartition("=")
    if not label:
        label = Path(directory).parent.name if Path(directory).name in ("best", "last") else Path(directory).name
    ae = Autoencoder.from_checkpoint(directory, device="cpu")
    bottleneck = getattr(ae.model, "bottleneck", None)
    binary = getattr(bottleneck, "kind", None) == "binary"
    bits = ae.context_dim if binary else 0
    out = {(f"{label} context", ae.context_dim): ("cosine", ae.encode(test))}
    if binary:
        out[(f"{label} bits", bits)] = ("hamming", ae.codes(test))
    print(f"encoded the test captions with {directory}", file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/multi30k-captions")
    ap.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--checkpoint", action="append", default=[], metavar="[LABEL=]DIR")
    ap.add_argument("--no-baselines", action="store_true", help="only the checkpoints")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--output", default="runs/autoencoder/retrieval")
    args = ap.parse_args()
    data = Path(args.data)
    test, groups = read_captions(data / "test2016.en.tsv")
    methods: dict = {}
    if not args.no_baselines:
        train, _ = read_captions(data / "train.en.tsv.gz")
        methods.update(classic_methods(train, test, args.bits, args.seed))
    for spec in args.checkpoint:
        methods.update(checkpoint_methods(spec, test))
    rows = []
    for (name, size), (kind, rep) in methods.items():
        t0 = time.perf_counter()
        dist = hamming_matrix(rep, rep) if kind == "hamming" else cosine_distance_matrix(rep, rep)
        row = {"method": name, "size": size, "distance": kind, **evaluate(dist, groups, args.k, args.seed, name)}
        if kind == "hamming":
            row["distinct_codes"] = len({r.tobytes() for r in np.packbits(np.asarray(rep, dtype=bool), axis=1)})
        row["seconds"] = round(time.perf_counter() - t0, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"queries": len(test), "images": int(groups.max()) + 1, "k": args.k, "seed": args.seed}
    (out / "retrieval.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    table = [
        f"| method | bits / dims | distance | precision@{args.k} (%) | mAP (%) | distinct codes |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    table += [
        f"| {r['method']} | {r['size'] or ''} | {r['distance']} | {r[f'precision@{args.k}']:.1f} | {r['mAP']:.1f} "
        f"| {r.get('distinct_codes', '')} |"
        for r in rows
    ]
    (out / "retrieval.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
