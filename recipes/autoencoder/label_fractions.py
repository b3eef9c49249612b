"""SST-2 classifiers with 1%, 10% and 100% of the labels: from scratch, on the frozen
pretrained encoder, and fine-tuning it; several seeds.

    python recipes/autoencoder/label_fractions.py --autoencoder runs/autoencoder/sst2_dae/best

Each cell trains sst2_classifier.yaml with the fraction's updates (--updates), picks the
checkpoint by accuracy on 1,000 held-out training phrases (select.tsv) and reports accuracy on
the 872 SST-2 dev sentences. Writes ``label_fractions.json`` / ``.md`` under --output; cells
already finished are not run again (an interrupted sweep continues). --jobs N runs N cells at
once (give each --threads; N x threads <= cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

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
    dev = load_labelled(cfg.data, "dev.tsv")
    predicted, _ = Autoencoder.from_checkpoint(out / "best", device="cpu").classify(dev.src)
    accuracy = 100.0 * sum(p == g for p, g in zip(predicted, dev.tgt)) / len(dev.tgt)
    result = {k: cell[k] for k in ("percent", "regime", "seed", "updates")} | {
        "dev_accuracy": accuracy,
        "train_seconds": seconds,
    }
    result_file.write_text(json.dumps(result) + "\n")
    print(json.dumps(result), flush=True)
    return result


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
    table = ["| labels | " + " | ".join(args.regimes) + " |", "| ---: |" + " ---: |" * len(args.regimes)]
    for p in args.percents:
        cells_text = []
        for r in args.regimes:
            accs = [x["dev_accuracy"] for x in results if x["percent"] == p and x["regime"] == r]
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            cells_text.append(f"{statistics.mean(accs):.1f} ± {std:.1f}")
        table.append(f"| {p}% | " + " | ".join(cells_text) + " |")
    (out / "label_fractions.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
