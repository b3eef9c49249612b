"""Prepare SST-2 for the autoencoder recipe: pretraining text and nested label subsets.

    python recipes/autoencoder/prepare.py --data-dir ../shared/data/sst2 --out runs/autoencoder/data

Writes into --out:
    pretrain.txt       every sentence of train.tsv.gz and test.tsv (labels unused), one per line
    select.tsv         1,000 labelled training items of >= --select-min-words words (15), held out
                       of every subset: checkpoint selection. Dev is full sentences (19.5 words on
                       average) while most training items are short phrases (9.4), so long
                       held-out items choose better than random phrases (--select-min-words 0)
    train_100.tsv      all other labelled training phrases (sentence<TAB>label)
    train_10.tsv       a random 10% of them; train_1.tsv: a random 1% (nested: 1% inside 10%)
    dev.tsv            the 872 dev sentences (what the recipe reports accuracy on)
    pretrain_valid.txt the first 1,000 lines of select.tsv as plain text (autoencoder validation)
"""

from __future__ import annotations

import argparse
import gzip
import random
from pathlib import Path


def read_tsv(path: Path) -> list[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    return rows[1:]  # header


def write(path: Path, lines: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)


def prepare(
    data_dir: Path, out: Path, seed: int = 1, held_out: int = 1000, select_min_words: int = 15
) -> dict[str, int]:
    train = [(s.strip(), label.strip()) for s, label in read_tsv(data_dir / "train.tsv.gz")]
    test = [row[1].strip() for row in read_tsv(data_dir / "test.tsv")]
    dev = [(s.strip(), label.strip()) for s, label in read_tsv(data_dir / "dev.tsv")]
    out.mkdir(parents=True, exist_ok=True)
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    long_enough = [i for i in order if len(train[i][0].split()) >= select_min_words]
    if len(long_enough) < held_out:
        raise SystemExit(f"only {len(long_enough)} training items have >= {select_min_words} words; {held_out} needed")
    select = long_enough[:held_out]
    chosen_set = set(select)
    rest = [i for i in order if i not in chosen_set]
    files = {
        "pretrain.txt": [s for s, _ in train] + test,
        "pretrain_valid.txt": [train[i][0] for i in select],
        "select.tsv": [f"{train[i][0]}\t{train[i][1]}" for i in select],
        "dev.tsv": [f"{s}\t{label}" for s, label in dev],
    }
    for percent in (100, 10, 1):
        chosen = rest[: max(1, len(rest) * percent // 100)]  # nested prefixes of one shuffle
        files[f"train_{percent}.tsv"] = [f"{train[i][0]}\t{train[i][1]}" for i in sorted(chosen)]
    for name, lines in files.items():
        write(out / name, lines)
    return {name: len(lines) for name, lines in files.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="../shared/data/sst2", help="folder with train.tsv.gz, dev.tsv, test.tsv")
    ap.add_argument("--out", default="runs/autoencoder/data")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--select-min-words", type=int, default=15, help="0: select.tsv is 1,000 random phrases")
    args = ap.parse_args()
    for name, n in prepare(
        Path(args.data_dir), Path(args.out), args.seed, select_min_words=args.select_min_words
    ).items():
        print(f"{args.out}/{name}: {n:,} lines")


if __name__ == "__main__":
    main()
