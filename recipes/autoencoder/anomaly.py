"""Anomaly detection by reconstruction loss: Multi30k val English against lines that do not belong.

    python recipes/autoencoder/anomaly.py --checkpoint runs/autoencoder/bottleneck/ctx256/best

Normal lines: Multi30k val.en (never trained on). Anomalies, as many in total: French sentences
(eng-fra valid.fr), English sentences with their words shuffled (Multi30k test2016.en) and
random character strings. The score is the autoencoder's per-token reconstruction loss
(``seq2seq score``); ROC AUC is reported per anomaly kind and for all together.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path

import numpy as np

from seq2seq.data.textio import read_lines
from seq2seq.infer.autoencoder import Autoencoder


def roc_auc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """P(score of a random anomaly > score of a random normal line), ties counting half."""
    scores = np.concatenate([normal, anomalous])
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks over ties
        tie = scores == value
        ranks[tie] = ranks[tie].mean()
    n, a = len(normal), len(anomalous)
    return float((ranks[n:].sum() - a * (a + 1) / 2) / (n * a))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="runs/autoencoder/bottleneck/ctx256/best")
    ap.add_argument("--multi30k", default="../shared/data/multi30k")
    ap.add_argument("--eng-fra", default="../shared/data/eng-fra")
    ap.add_argument("--output", default="runs/autoencoder/anomaly.json")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    normal = read_lines(Path(args.multi30k) / "val.en")
    k = len(normal) // 3
    french = rng.sample(read_lines(Path(args.eng_fra) / "valid.fr"), k)
    shuffled = []
    for line in rng.sample(read_lines(Path(args.multi30k) / "test2016.en"), k):
        words = line.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    alphabet = string.ascii_letters + string.digits + " .,;!?"
    chars = ["".join(rng.choice(alphabet) for _ in range(rng.randint(20, 80))) for _ in range(len(normal) - 2 * k)]
    ae = Autoencoder.from_checkpoint(args.checkpoint, device="cpu")
    kinds = {"French": french, "shuffled English": shuffled, "random characters": chars}
    base = ae.score(normal)[:, 2]
    result = {"normal_lines": len(normal), "normal_mean_loss": float(base.mean())}
    everything = []
    for name, lines in kinds.items():
        s = ae.score(lines)[:, 2]
        everything.append(s)
        result[name] = {"lines": len(lines), "mean_loss": float(s.mean()), "roc_auc": roc_auc(base, s)}
    result["all"] = {"lines": sum(len(v) for v in kinds.values()), "roc_auc": roc_auc(base, np.concatenate(everything))}
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
