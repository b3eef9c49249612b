"""The whole autoencoder recipe, step by step (each step skips work already done).

    python recipes/autoencoder/run.py --sst2 ../shared/data/sst2 --multi30k ../shared/data/multi30k \
        --eng-fra ../shared/data/eng-fra

1. prepare.py            SST-2 -> pretraining text, nested 1% / 10% / 100% label subsets
2. seq2seq pretrain      sst2_dae.yaml: denoising GRU autoencoder, 512-d context vector
3. label_fractions.py    classifiers: scratch / frozen / fine-tuned x 1% / 10% / 100% x seeds
4. hashing.py            binary-code autoencoders (16, 32, 64 bits): precision@100, query speed
5. bottleneck_sizes.py   Multi30k English reconstruction vs context size (64, 256, 1024)
6. anomaly.py            ROC AUC of reconstruction loss: Multi30k val vs French / shuffled / random

--steps picks steps (e.g. --steps 1 2 3). --jobs/--threads go to label_fractions.py.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sst2", default="../shared/data/sst2")
    ap.add_argument("--multi30k", default="../shared/data/multi30k")
    ap.add_argument("--eng-fra", default="../shared/data/eng-fra")
    ap.add_argument("--out", default="runs/autoencoder")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    out, py = Path(args.out), sys.executable
    data, dae = out / "data", out / "sst2_dae"
    commands = {
        1: [py, HERE / "prepare.py", "--data-dir", args.sst2, "--out", data],
        2: [
            py,
            "-m",
            "seq2seq",
            "pretrain",
            HERE / "sst2_dae.yaml",
            "--set",
            f"data.path={data}",
            "--set",
            f"train.output_dir={dae}",
            "--set",
            f"train.threads={args.threads}",
        ],
        3: [
            py,
            HERE / "label_fractions.py",
            "--autoencoder",
            dae / "best",
            "--data",
            data,
            "--output",
            out / "classifiers",
            "--jobs",
            str(args.jobs),
            "--threads",
            str(args.threads),
        ],
        4: [
            py,
            HERE / "hashing.py",
            "--dae",
            dae / "best",
            "--data",
            data,
            "--output",
            out / "hashing",
            "--set",
            f"train.threads={args.threads}",
        ],
        5: [
            py,
            HERE / "bottleneck_sizes.py",
            "--data-dir",
            args.multi30k,
            "--output",
            out / "bottleneck",
            "--set",
            f"train.threads={args.threads}",
        ],
        6: [
            py,
            HERE / "anomaly.py",
            "--checkpoint",
            out / "bottleneck" / "ctx256" / "best",
            "--multi30k",
            args.multi30k,
            "--eng-fra",
            args.eng_fra,
            "--output",
            out / "anomaly.json",
        ],
    }
    for step in args.steps:
        if step == 2 and (dae / "best").is_dir():
            print(f"step 2: {dae} exists, skipping pretraining", flush=True)
            continue
        cmd = [str(c) for c in commands[step]]
        print(f"step {step}: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
