"""Hash lookups at scale: all 145,000 Multi30k training captions indexed by `seq2seq hash`.

    python recipes/autoencoder/lookups.py --checkpoint runs/autoencoder/captions/para16/best \\
        --checkpoint runs/autoencoder/captions/para32/best --checkpoint runs/autoencoder/captions/para64/best

For each binary-code checkpoint:
1. ``seq2seq hash`` writes the index of the training captions (prepare_captions.py's train.txt);
2. the index file is checked to load without unpickling: every member of the .npz is a plain
   .npy array whose dtype is not ``object`` (read from the .npy headers, without loading), and
   ``CodeIndex.load`` (``np.load(allow_pickle=False)``) reads it;
3. ``--queries`` test2016 captions are encoded and searched: exhaustive Hamming ranking
   (``CodeIndex.rank``, top 100) and hash-table lookups within radius 0, 1, 2 (and 3 up to 32
   bits) (``CodeIndex.lookup``), timed per query on this process (one thread);
4. exactness: for every query, the radius lookup returns exactly the lines whose Hamming distance
   (computed by brute force) is within the radius, and the top-100 ranking's distances are the
   100 smallest;
5. ``seq2seq search --top 10`` and ``--radius 1`` run end to end (load, encode, search) on
   the first 100 queries, timed as commands.

``--simhash 16 32 64`` also measures steps 2-4 on SimHash codes of TF-IDF (fitted on the corpus):
the same ``CodeIndex`` with codes spread as a working hash spreads them.

Writes ``--output``/lookups.json and lookups.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from retrieval import read_captions  # noqa: E402


def npz_member_dtypes(path: Path) -> dict[str, str]:
    """Each member's dtype, read from the .npy headers only (nothing is unpickled)."""
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            with z.open(name) as f:
                version = np.lib.format.read_magic(f)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(f)
                out[name] = dtype.str if not dtype.hasobject else "object"
    return out


def timed(fn, items) -> tuple[list, float]:
    t0 = time.perf_counter()
    results = [fn(x) for x in items]
    return results, 1000.0 * (time.perf_counter() - t0) / max(1, len(items))


def measure(index, codes: np.ndarray, top: int) -> dict:
    """Per-query times of exhaustive ranking and radius lookups, mean matches, and exactness
    against brute-force Hamming distances."""
    ranked, rank_ms = timed(lambda c: index.rank(c, top), codes)
    row = {
        "bits": index.bits,
        "corpus_lines": len(index),
        "distinct_codes": len({r.tobytes() for r in index.packed}),
        f"rank_top{top}_ms_per_query": round(rank_ms, 3),
    }
    exact = True
    for q, got in zip(codes, ranked):
        exact &= sorted(dist for _, dist in got) == np.sort(index.hamming(q))[:top].tolist()
    for radius in (0, 1, 2, 3):
        if radius == 3 and index.bits > 32:
            continue
        index.lookup(codes[0], radius)  # build the hash table outside the timing
        found, ms = timed(lambda c, radius=radius: index.lookup(c, radius), codes)
        row[f"radius{radius}_ms_per_query"] = round(ms, 3)
        row[f"radius{radius}_mean_matches"] = round(float(np.mean([len(f) for f in found])), 1)
        row[f"radius{radius}_queries_with_a_match"] = round(100.0 * float(np.mean([bool(f) for f in found])), 1)
        for q, got in zip(codes, found):
            exact &= sorted(i for i, _ in got) == np.flatnonzero(index.hamming(q) <= radius).tolist()
    row["exact"] = bool(exact)
    return row


def saved_and_loaded(index, path: Path):
    """The index written, checked for pickle-free members, and read back (timed)."""
    from seq2seq.infer.hashing import CodeIndex

    if index is not None:
        index.save(path)
    dtypes = npz_member_dtypes(path)
    assert all(d != "object" for d in dtypes.values()), dtypes
    t0 = time.perf_counter()
    loaded = CodeIndex.load(path)
    info = {"index_bytes": path.stat().st_size, "npz_members": dtypes, "load_s": round(time.perf_counter() - t0, 3)}
    return loaded, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", action="append", default=[], metavar="DIR")
    ap.add_argument("--simhash", type=int, nargs="*", default=[], metavar="BITS", help="also SimHash codes of TF-IDF")
    ap.add_argument("--corpus", default="runs/autoencoder/captions/train.txt")
    ap.add_argument("--data", default="../shared/data/multi30k-captions")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--output", default="runs/autoencoder/lookups")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from seq2seq.infer.autoencoder import Autoencoder
    from seq2seq.infer.hashing import CodeIndex

    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    queries = read_captions(Path(args.data) / "test2016.en.tsv")[0][: args.queries]
    corpus = Path(args.corpus).read_text(encoding="utf-8").splitlines()
    (out / "queries.txt").write_text("".join(q + "\n" for q in queries[:100]), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    if args.simhash:
        from sklearn.feature_extraction.text import TfidfVectorizer

        tfidf = TfidfVectorizer()
        x_corpus, x_queries = tfidf.fit_transform(corpus), tfidf.transform(queries)
        for bits in args.simhash:
            planes = np.random.default_rng([1, bits]).standard_normal((x_corpus.shape[1], bits))
            built = CodeIndex.from_codes(np.asarray(x_corpus @ planes) > 0, corpus)
            index, info = saved_and_loaded(built, out / f"simhash{bits}.npz")
            rows.append(
                {"codes": f"simhash{bits}", **info, **measure(index, np.asarray(x_queries @ planes) > 0, args.top)}
            )
            print(json.dumps(rows[-1]), flush=True)
    for directory in args.checkpoint:
        name = Path(directory).parent.name if Path(directory).name in ("best", "last") else Path(directory).name
        index_path = out / f"{name}.npz"
        t0 = time.perf_counter()
        cmd = ["seq2seq", "hash", "--checkpoint", directory, "-i", args.corpus, "-o", str(index_path), "--quiet"]
        subprocess.run(cmd, check=True, env=env)
        hash_s = time.perf_counter() - t0
        index, info = saved_and_loaded(None, index_path)
        ae = Autoencoder.from_checkpoint(directory, device="cpu")
        t0 = time.perf_counter()
        codes = ae.codes(queries)
        encode_ms = 1000.0 * (time.perf_counter() - t0) / len(queries)
        row = {"codes": name, "checkpoint": directory, "hash_command_s": round(hash_s, 1), **info}
        row.update(encode_ms_per_query=round(encode_ms, 3), **measure(index, codes, args.top))
        for flags in (["--top", "10"], ["--radius", "1"]):
            t0 = time.perf_counter()
            cmd = ["seq2seq", "search", "--checkpoint", directory, "--index", str(index_path), "--quiet"]
            result = subprocess.run(
                [*cmd, *flags, "-i", str(out / "queries.txt")], check=True, env=env, capture_output=True, text=True
            )
            row[f"search_{flags[0][2:]}_command_s_100_queries"] = round(time.perf_counter() - t0, 2)
            row[f"search_{flags[0][2:]}_output_lines"] = result.stdout.count("\n")
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "lookups.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = [
        f"| codes | bits | distinct codes in {rows[0]['corpus_lines']:,} | ranking, top {args.top} (ms/query) "
        "| radius 0 / 1 / 2 / 3 lookup (ms/query) | mean matches at radius 0 / 1 / 2 / 3 | exact |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        ms = " / ".join(f"{r[f'radius{i}_ms_per_query']:.2f}" for i in range(4) if f"radius{i}_ms_per_query" in r)
        n = " / ".join(f"{r[f'radius{i}_mean_matches']:,.0f}" for i in range(4) if f"radius{i}_mean_matches" in r)
        table.append(
            f"| {r['codes']} | {r['bits']} | {r['distinct_codes']:,} | {r[f'rank_top{args.top}_ms_per_query']:.2f} "
            f"| {ms} | {n} | {'yes' if r['exact'] else 'NO'} |"
        )
    (out / "lookups.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
