"""More unlabelled English for the SST-2 autoencoder: SST-2's sentences plus other corpora, in SST-2's form.

    python recipes/autoencoder/more_text.py --out runs/autoencoder/data_sent/pretrain_more.txt \\
        runs/autoencoder/data_sent/pretrain.txt runs/autoencoder/captions/train.txt DATA/eng-fra/train.en.gz

SST-2's text is lower-cased and split the Penn Treebank way (``it 's a charming , funny film .``).
Every input line is brought to that form (lower case; punctuation and the clitics 's n't 're 've
'll 'd 'm split off), duplicates and empty lines dropped, and the union written in input order.
No labels are read: the classifier's dev and select sentences are not in any of these files
(SST-2's dev is never in ``pretrain.txt``; ``prepare.py`` writes it apart).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from seq2seq.data import read_lines  # plain or gzip

_CLITIC = re.compile(r"(\w)(n't|'s|'re|'ve|'ll|'d|'m)\b", re.IGNORECASE)
_PUNCT = re.compile(r"([.,!?;:()\"])")


def sst_form(line: str) -> str:
    """``It's awesome.`` -> ``it 's awesome .``"""
    text = _CLITIC.sub(r"\1 \2", line.strip().lower())
    return " ".join(_PUNCT.sub(r" \1 ", text).split())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", type=Path, help="text files, one sentence per line (.gz read too)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    seen: dict[str, None] = {}
    for path in args.inputs:
        if not path.is_file():
            raise SystemExit(f"{path}: no such file")
        before = len(seen)
        for line in read_lines(path):
            if text := sst_form(line):
                seen.setdefault(text, None)
        print(f"{path}: {len(seen) - before:,} new lines")
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text("".join(text + "\n" for text in seen), encoding="utf-8")
    tmp.replace(args.out)
    print(f"{args.out}: {len(seen):,} lines")


if __name__ == "__main__":
    main()
