"""SST-2 classifiers with 1%, 10% and 100% of the labels: from scratch, on the frozen
pretrained encoder, and fine-tuning it; several seeds.

    python recipes/autoencoder/label_fractions.py --autoencoder runs/autoencoder/sst2_dae/best

Each cell trains sst2_classifier.yaml with the fraction's updates (--updates), picks the
checkpoint by accuracy on 1,000 held-out training items (select.tsv; prepare.py) and reports
accuracy on select.tsv and on the 872 SST-2 dev sentences. Each cell keeps its class
probabilities on both (``probs.npz``); the table also gives the ensemble of a regime's seeds
(mean probabilities). Writes ``label_fractions.json`` / ``.md`` under --output; cells already
finished are not run again (an interrupted sweep continues). --jobs N runs N cells at once
(give each --threads; N x threads <= cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

REGIMES = ("scratch", "frozen", "fine-tuned")


def run_cell(cell: dict) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", str(cell["threads"]))
    from common import train_or_reuse

    from seq2seq.config import load_config
    from seq2seq.data.loading import load_labelled
    from seq2seq.infer.autoencoder import Autoencoder

    out = Path(cell["dir"])
    result_file = out / "cell.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    ae = cell["autoencoder"]
    regime_overrides = {
        "scratch": [f"tokenizer.model={ae}/spm.model"],
        "frozen": [f"train.init_encoder={ae}", "train.freeze=[encoder]"],
        "fine-tuned": [f"train.init_encoder={ae}"],
    }[cell["regime"]]
    overrides = [
        f"data.path={cell['data']}",
        f"data.train=train_{cell['percent']}.tsv",
        f"train.seed={cell['seed']}",
        f"train.max_steps={cell['updates']}",
        f"train.valid_every={max(1, cell['updates'] // 10)}",
        f"train.threads={cell['threads']}",
        *regime_overrides,
        *cell["set"],
    ]
    seconds = train_or_reuse(HERE / "sst2_classifier.yaml", out, overrides)
    cfg = load_config(HERE / "sst2_classifier.yaml", [f"data.path={cell['data']}"])
    model = Autoencoder.from_checkpoint(out / "best", device="cpu")
    result = {k: cell[k] for k in ("percent", "regime", "seed", "updates")}
    probs = {}
    for split in ("select", "dev"):
        data = load_labelled(cfg.data, f"{split}.tsv")
        predicted, probs[split] = model.classify(data.src)
        result[f"{split}_accuracy"] = 100.0 * sum(p == g for p, g in zip(predicted, data.tgt)) / len(data.tgt)
    np.savez(out / "probs.npz", labels=np.array(model.labels), **probs)
    result |= {"train_seconds": seconds, "set": cell["set"]}
    result_file.write_text(json.dumps(result) + "\n")
    print(json.dumps(result), flush=True)
    return result


def ensemble_accuracy(cells: list[dict], data: str, split: str) -> float:
    """Accuracy (%) of the mean class probabilities of ``cells`` (finished cells' probs.npz)."""
    from seq2seq.config import load_config
    from seq2seq.data.loading import load_labelled

    saved = [np.load(Path(c["dir"]) / "probs.npz") for c in cells]
    labels = [str(x) for x in saved[0]["labels"]]
    mean = np.mean([z[split] for z in saved], axis=0)
    gold = load_labelled(load_config(HERE / "sst2_classifier.yaml", [f"data.path={data}"]).data, f"{split}.tsv").tgt
    return 100.0 * sum(labels[int(i)] == g for i, g in zip(mean.argmax(axis=1), gold)) / len(gold)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--autoencoder", default="runs/autoencoder/sst2_dae/best", help="pretrained checkpoint")
    ap.add_argument("--data", default="runs/autoencoder/data", help="prepare.py's output folder")
    ap.add_argument("--output", default="runs/autoencoder/classifiers")
    ap.add_argument("--percents", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument(
        "--updates", type=int, nargs="+", default=[300, 600, 2000], help="updates per cell, one per --percents entry"
    )
    ap.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=REGIMES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    if len(args.updates) != len(args.percents):
        ap.error("give one --updates value per --percents value")
    out = Path(args.output)
    cells = [
        {
            "percent": p,
            "updates": u,
            "regime": r,
            "seed": s,
            "dir": str(out / f"p{p}_{r}_s{s}"),
            "autoencoder": str(Path(args.autoencoder).resolve()),
            "data": str(Path(args.data).resolve()),
            "threads": args.threads,
            "set": args.set,
        }
        for p, u in zip(args.percents, args.updates)
        for s in args.seeds
        for r in args.regimes
    ]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(run_cell, cells))
    else:
        results = [run_cell(c) for c in cells]
    (out / "label_fractions.json").write_text(json.dumps(results, indent=2) + "\n")
    # dev accuracy (select accuracy), mean ± std over seeds; then the seeds' ensemble
    table = [
        "| labels | regime | dev, mean ± std | select, mean ± std | dev, ensemble | select, ensemble |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for p in args.percents:
        for r in args.regimes:
            group = [(c, x) for c, x in zip(cells, results) if x["percent"] == p and x["regime"] == r]
            row = [f"{p}%", r]
            for split in ("dev", "select"):
                accs = [x[f"{split}_accuracy"] for _, x in group]
                std = statistics.stdev(accs) if len(accs) > 1 else 0.0
                row.append(f"{statistics.mean(accs):.1f} ± {std:.1f}")
            for split in ("dev", "select"):
                row.append(f"{ensemble_accuracy([c for c, _ in group], cells[0]['data'], split):.1f}")
            table.append("| " + " | ".join(row) + " |")
    (out / "label_fractions.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
