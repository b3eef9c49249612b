"""Training files for the caption-retrieval experiments (retrieval.py) from Multi30k Task 2.

    python recipes/autoencoder/prepare_captions.py --data ../shared/data/multi30k-captions \\
        --out runs/autoencoder/captions

Reads ``train.en.tsv.gz`` and ``val.en.tsv`` (``IMAGE<TAB>CAPTION``, five rows per image) and writes:

- ``train.txt`` / ``valid.txt``: one caption per line (autoencoder training: 145,000 / 5,070 lines);
- ``para_train.tsv``: ``caption<TAB>other caption of the same image``, all 20 ordered pairs of
  each training image (580,000 lines), for a paraphrase target (task translation, en -> en);
- ``para_valid.tsv``: one pair per validation caption (its image's next caption, cyclically).

test2016 is never read here: it is the benchmark's query set and database.
"""

from __future__ import annotations

import argparse
import gzip
from collections import defaultdict
from pathlib import Path


def read_groups(path: Path) -> list[list[str]]:
    """Captions grouped by image, in file order."""
    opener = gzip.open if path.suffix == ".gz" else open
    groups: dict[str, list[str]] = defaultdict(list)
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            image, caption = line.rstrip("\n").split("\t", 1)
            groups[image].append(caption)
    return list(groups.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/multi30k-captions")
    ap.add_argument("--out", default="runs/autoencoder/captions")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, valid = read_groups(data / "train.en.tsv.gz"), read_groups(data / "val.en.tsv")
    (out / "train.txt").write_text("".join(c + "\n" for g in train for c in g), encoding="utf-8")
    (out / "valid.txt").write_text("".join(c + "\n" for g in valid for c in g), encoding="utf-8")
    pairs = [f"{a}\t{b}\n" for g in train for i, a in enumerate(g) for j, b in enumerate(g) if i != j]
    (out / "para_train.tsv").write_text("".join(pairs), encoding="utf-8")
    vpairs = [f"{c}\t{g[(i + 1) % len(g)]}\n" for g in valid for i, c in enumerate(g)]
    (out / "para_valid.tsv").write_text("".join(vpairs), encoding="utf-8")
    print(f"{sum(map(len, train)):,} training captions, {len(pairs):,} pairs; {len(vpairs):,} validation pairs")


if __name__ == "__main__":
    main()
