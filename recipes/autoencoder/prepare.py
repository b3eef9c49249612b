"""Prepare SST-2 for the autoencoder recipe: pretraining text and nested label subsets.

    python recipes/autoencoder/prepare.py --data-dir ../shared/data/sst2 --out runs/autoencoder/data

Writes into --out:
    pretrain.txt       every sentence of train.tsv.gz and test.tsv (labels unused), one per line
    select.tsv         labelled training items held out of every subset: checkpoint selection.
                       --select sentences (the default): 500 whole training sentences (items that
                       are no part of a longer item; 19.4 words on average, like dev's 19.5), and
                       every phrase inside them that is no part of a kept sentence is dropped from
                       training too, so that, as for dev, the labelled parse-tree phrases of a
                       held-out sentence are not in training (about 4,000 phrases).
                       --select items: 1,000 items of >= --select-min-words words (15; 0: random
                       phrases). Most of those sit inside a longer training item with their label,
                       so they measure memory more than generalisation.
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
from typing import Iterator


def read_tsv(path: Path) -> list[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    return rows[1:]  # header


def write(path: Path, lines: list[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)


def inner_spans(sentence: str) -> Iterator[str]:
    """Every contiguous word span of ``sentence`` shorter than the whole."""
    words = sentence.split()
    for start in range(len(words)):
        for end in range(start + 1, len(words) + 1):
            if end - start < len(words):
                yield " ".join(words[start:end])


def hold_out_sentences(train: list[tuple[str, str]], order: list[int], held_out: int) -> tuple[list[int], set[int]]:
    """(held-out sentence indices, indices to drop from training).

    SST-2's training items are the phrases of parse trees: a sentence (an item inside no longer
    item) comes with its labelled sub-phrases. ``held_out`` sentences are taken in ``order``;
    a phrase inside one of them is dropped unless it is also inside a kept sentence.
    """
    texts = {text for text, _ in train}
    inside = {text: {span for span in inner_spans(text) if span in texts} for text in texts}
    is_part = set().union(*inside.values())
    first = {}  # sentence text -> its first index in order (duplicates count once)
    for i in order:
        if train[i][0] not in is_part:
            first.setdefault(train[i][0], i)
    sentences = list(first.values())
    if len(sentences) < held_out:
        raise SystemExit(f"only {len(sentences)} whole training sentences; {held_out} to hold out")
    held = sentences[:held_out]
    held_texts = {train[i][0] for i in held}
    kept_parts = set().union(*(inside[train[i][0]] for i in sentences[held_out:]))
    dropped_texts = set().union(*(inside[t] for t in held_texts)) - kept_parts
    dropped = {i for i, (text, _) in enumerate(train) if text in dropped_texts or text in held_texts}
    return held, dropped - set(held)


def prepare(
    data_dir: Path,
    out: Path,
    seed: int = 1,
    held_out: int = 500,
    select_min_words: int = 15,
    select: str = "sentences",
) -> dict[str, int]:
    train = [(s.strip(), label.strip()) for s, label in read_tsv(data_dir / "train.tsv.gz")]
    test = [row[1].strip() for row in read_tsv(data_dir / "test.tsv")]
    dev = [(s.strip(), label.strip()) for s, label in read_tsv(data_dir / "dev.tsv")]
    out.mkdir(parents=True, exist_ok=True)
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    if select == "sentences":
        chosen, dropped = hold_out_sentences(train, order, held_out)
    elif select == "items":
        long_enough = [i for i in order if len(train[i][0].split()) >= select_min_words]
        if len(long_enough) < held_out:
            raise SystemExit(f"only {len(long_enough)} items have >= {select_min_words} words; {held_out} needed")
        chosen, dropped = long_enough[:held_out], set()
    else:
        raise ValueError(f"select must be 'sentences' or 'items', got {select!r}")
    excluded = set(chosen) | dropped
    rest = [i for i in order if i not in excluded]
    files = {
        "pretrain.txt": [s for s, _ in train] + test,
        "pretrain_valid.txt": [train[i][0] for i in chosen[:1000]],
        "select.tsv": [f"{train[i][0]}\t{train[i][1]}" for i in chosen],
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
    ap.add_argument("--select", choices=["sentences", "items"], default="sentences", help="what select.tsv holds")
    ap.add_argument("--held-out", type=int, help="select.tsv's size (500 sentences or 1,000 items)")
    ap.add_argument("--select-min-words", type=int, default=15, help="--select items: 0 gives random phrases")
    args = ap.parse_args()
    missing = [name for name in ("train.tsv.gz", "dev.tsv", "test.tsv") if not (Path(args.data_dir) / name).is_file()]
    if missing:
        raise SystemExit(f"--data-dir {args.data_dir}: no {', '.join(missing)} (GLUE's SST-2 folder; see the README)")
    held_out = args.held_out or (500 if args.select == "sentences" else 1000)
    for name, n in prepare(
        Path(args.data_dir), Path(args.out), args.seed, held_out, args.select_min_words, args.select
    ).items():
        print(f"{args.out}/{name}: {n:,} lines")


if __name__ == "__main__":
    main()
