"""Test-set figures of image autoencoders trained with ``seq2seq train`` (config.yaml), through
the toolkit's API (``Autoencoder.from_checkpoint(...)`` on arrays, as ``seq2seq score`` /
``reconstruct`` do).

    python recipes/image_autoencoder/evaluate.py --checkpoints runs/image_autoencoder_cli/best
    python recipes/image_autoencoder/evaluate.py --checkpoints A/best B/best --noise gaussian 0.3
    python recipes/image_autoencoder/evaluate.py --checkpoints S1/best S2/best S3/best --mean   # seeds

For each checkpoint, on the digits test split its config names (split by image: never trained
on): the mean squared error per pixel of the reconstruction against the clean image, of clean
inputs and (``--noise``) of noised ones; for a super-resolution model (``model.downsample``) that
of bicubic upsampling of the pooled image too; and the ROC AUC of the reconstruction error as an
anomaly score, test digits against letters, uniform noise and digits shifted 3 pixels (the
generators of run.py). ``--save-test FILE.npy`` writes the test images, for the CLI commands.

``--retrieval DIR`` (checkpoints with ``model.bottleneck: binary``): ``seq2seq hash`` indexes the
training images' codes, ``seq2seq search --top 50`` queries the test images, and the share of each
query's 1, 10 and 50 nearest training images that show its digit is printed, against random
codes of as many bits (run.py's ``precision_at_k``); the index and arrays are written in DIR.
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path
from typing import Optional

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def noised(x: np.ndarray, kind: str, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return np.clip(x + level * rng.standard_normal(x.shape), 0.0, 1.0).astype(np.float32)
    return (x * (rng.random(x.shape) >= level)).astype(np.float32)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoints", nargs="+", required=True)
    p.add_argument("--noise", nargs=2, metavar=("KIND", "LEVEL"), help="gaussian SIGMA or masking SHARE")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--save-test", default=None, metavar="FILE.npy")
    p.add_argument("--mean", action="store_true", help="a last row: mean ± std over the checkpoints (e.g. seeds)")
    p.add_argument("--retrieval", default=None, metavar="DIR", help="Hamming retrieval through hash/search")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    recipe = runpy.run_path(str(HERE / "run.py"), run_name="recipe")

    from seq2seq.cli.io import saved_config
    from seq2seq.data.image_sources import digit_images
    from seq2seq.infer.autoencoder import Autoencoder

    head = "checkpoint | test images | clean in | noisy input itself | noisy in | bicubic | AUC letters | AUC noise"
    print(f"| {head} | AUC shifted |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    table = []
    for checkpoint in args.checkpoints:
        cfg = saved_config(checkpoint)
        test = digit_images(cfg.data, "test").items
        if args.save_test:
            np.save(args.save_test, test)
        ae = Autoencoder.from_checkpoint(checkpoint, device="cpu")
        mse = lambda out, ref: float(((out - ref) ** 2).mean())  # noqa: E731
        clean = mse(ae.reconstruct(test), test)
        row = [checkpoint, str(len(test)), f"{clean:.4f}", "", "", "", "", "", ""]
        if args.noise:
            kind, level = args.noise[0], float(args.noise[1])
            noisy = noised(test, kind, level, args.seed)
            row[3], row[4] = f"{mse(noisy, test):.4f}", f"{mse(ae.reconstruct(noisy), test):.4f}"
        if cfg.model.downsample > 1:
            row[5] = f"{mse(recipe['bicubic'](recipe['downsample'](test)), test):.4f}"
        rng = np.random.default_rng(args.seed)
        normal = ae.score(test)
        others = [recipe["letters"](len(test), rng), rng.random(test.shape, dtype=np.float32), recipe["shifted"](test)]
        row[6:] = [f"{recipe['roc_auc'](normal, ae.score(x)):.3f}" for x in others]
        print("| " + " | ".join(row) + " |")
        table.append(row)
    for checkpoint in args.checkpoints if args.retrieval else []:
        retrieval(checkpoint, Path(args.retrieval), recipe, args.seed)
    if args.mean and len(table) > 1:
        cells = []
        for k in range(2, 9):
            values = [float(r[k]) for r in table if r[k]]
            digits = 3 if k >= 6 else 4
            cells.append(f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}" if values else "")
        print(f"| mean ± std of {len(table)} | {table[0][1]} | " + " | ".join(cells) + " |")
    return 0


def retrieval(checkpoint: str, out: Path, recipe: dict, seed: int) -> None:
    """Precision@1/10/50 by digit of ``seq2seq search`` over ``seq2seq hash``'s index (see above)."""
    import contextlib
    import io

    from seq2seq.cli import main as seq2seq
    from seq2seq.cli.io import saved_config
    from seq2seq.data.image_sources import digit_images
    from seq2seq.infer.hashing import CodeIndex

    cfg = saved_config(checkpoint)
    train, test = digit_images(cfg.data, "train"), digit_images(cfg.data, "test")
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "train.npy", train.items)
    np.save(out / "test.npy", test.items)
    index, found = str(out / "index.npz"), io.StringIO()
    if seq2seq(["hash", "--checkpoint", checkpoint, "--quiet", "--input", str(out / "train.npy"), "-o", index]):
        raise SystemExit(f"seq2seq hash failed on {checkpoint}")
    with contextlib.redirect_stdout(found):
        status = seq2seq(
            ["search", "--checkpoint", checkpoint, "--quiet", "--index", index, "--top", "50"]
            + ["--input", str(out / "test.npy")]
        )
    if status:
        raise SystemExit(f"seq2seq search failed on {checkpoint}")
    nearest = [[] for _ in test.items]  # per query, the indexed rows nearest first
    for line in found.getvalue().splitlines():
        query, _, item, _ = line.split("\t")
        nearest[int(query) - 1].append(int(item) - 1)
    hits = train.labels[np.array(nearest)] == test.labels[:, None]
    bits = CodeIndex.load(index).bits
    rng = np.random.default_rng(seed)
    random_db, random_q = rng.random((len(train.items), bits)) < 0.5, rng.random((len(test.items), bits)) < 0.5
    cells = []
    for k in (1, 10, 50):
        chance = recipe["precision_at_k"](random_q, test.labels, random_db, train.labels, k)
        cells.append(f"precision@{k} {hits[:, :k].mean():.3f} (random codes {chance:.3f})")
    print(f"{checkpoint}: {len(test.items)} test images, {len(train.items)} indexed: " + ", ".join(cells))


if __name__ == "__main__":
    raise SystemExit(main())
