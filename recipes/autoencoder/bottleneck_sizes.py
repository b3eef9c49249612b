"""Reconstruction on Multi30k English as a function of the context-vector size.

    python recipes/autoencoder/bottleneck_sizes.py --data-dir ../shared/data/multi30k --sizes 64 256 1024

Trains one autoencoder per size (multi30k_ae.yaml, same budget), reconstructs val.en greedily
and reports exact match and token accuracy (word-level, position by position). Writes
``bottleneck_sizes.json``, ``.md`` and ``.png`` under --output. Sizes already trained (their
``best/`` exists) are not trained again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import reconstruction_metrics, train_or_reuse  # noqa: E402

from seq2seq.data.textio import read_lines  # noqa: E402
from seq2seq.infer.autoencoder import Autoencoder  # noqa: E402
from seq2seq.plots import pyplot  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="../shared/data/multi30k")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--output", default="runs/autoencoder/bottleneck")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    args = ap.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    references = read_lines(Path(args.data_dir) / "val.en")
    rows = []
    for size in args.sizes:
        run = out / f"ctx{size}"
        seconds = train_or_reuse(
            HERE / "multi30k_ae.yaml", run, [f"data.path={args.data_dir}", f"model.context_dim={size}", *args.set]
        )
        hyps = Autoencoder.from_checkpoint(run / "best", device="cpu").reconstruct(references, beam=1)
        row = {"context_dim": size, **reconstruction_metrics(hyps, references), "train_seconds": seconds}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "bottleneck_sizes.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = [
        "| context size | exact match (%) | token accuracy (%) | training time (s) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    table += [
        f"| {r['context_dim']} | {r['exact_match']:.1f} | {r['token_accuracy']:.1f} | {r['train_seconds']:.0f} |"
        for r in rows
    ]
    (out / "bottleneck_sizes.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    plt = pyplot("bottleneck_sizes.py's plot")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = [r["context_dim"] for r in rows]
    ax.plot(xs, [r["exact_match"] for r in rows], "o-", label="exact match")
    ax.plot(xs, [r["token_accuracy"] for r in rows], "s-", label="token accuracy")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("context vector size")
    ax.set_ylabel("% on Multi30k val (English)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "bottleneck_sizes.png", dpi=120)
    print(f"wrote {out / 'bottleneck_sizes.png'}")


if __name__ == "__main__":
    main()
