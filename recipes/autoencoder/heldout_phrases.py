"""Accuracy of SST-2 classifiers on a third held-out set: the phrases inside the held-out select
sentences that prepare.py dropped from training (``--select sentences``).

dev (872 sentences) and select (500) can disagree; these 4,086 labelled phrases were never trained
on either, and their labels are the annotators' per phrase. Reported for all of them and for those
of at least 5 and 10 words (short phrases are mostly neutral words with a forced label).

    python recipes/autoencoder/heldout_phrases.py --sst2 DATA/sst2 --data runs/autoencoder/data_sent \\
        runs/autoencoder/cls_sent_elr/p100_fine-tuned_s1 runs/autoencoder/cls_sent_adv/p100_fine-tuned_s1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def heldout_phrases(sst2: Path, data: Path) -> list[tuple[str, str]]:
    """(phrase, label) of SST-2's training items in neither train_100.tsv nor select.tsv."""
    from prepare import read_tsv  # (drops the header line SST-2's files have)

    from seq2seq.data import read_lines

    def items(rows: list[list[str]]) -> dict[str, str]:
        return {row[0].strip(): row[1] for row in rows if len(row) == 2}

    def plain(path: Path) -> list[list[str]]:  # prepare.py's outputs: no header
        return [line.split("\t") for line in read_lines(path)]

    seen = set(items(plain(data / "train_100.tsv"))) | set(items(plain(data / "select.tsv")))
    return [(text, label) for text, label in items(read_tsv(sst2 / "train.tsv.gz")).items() if text not in seen]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sst2", type=Path, required=True, help="SST-2's folder (train.tsv.gz)")
    ap.add_argument("--data", type=Path, default=Path("runs/autoencoder/data_sent"), help="prepare.py's output")
    ap.add_argument("runs", nargs="+", type=Path, help="classifier run folders (their best/ is used)")
    args = ap.parse_args()
    from seq2seq.infer.autoencoder import Autoencoder

    phrases = heldout_phrases(args.sst2, args.data)
    texts, gold = [t for t, _ in phrases], [label for _, label in phrases]
    words = np.array([len(t.split()) for t in texts])
    print(f"{len(phrases)} held-out phrases ({(words >= 5).sum()} of 5+ words, {(words >= 10).sum()} of 10+)\n")
    print("| run | all | 5+ words | 10+ words |\n|---|---:|---:|---:|")
    for run in args.runs:
        predicted, _ = Autoencoder.from_checkpoint(run / "best", device="cpu").classify(texts)
        right = np.array([p == g for p, g in zip(predicted, gold)])
        cells = [100 * right[words >= n].mean() for n in (0, 5, 10)]
        print(f"| {run} | " + " | ".join(f"{c:.1f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
