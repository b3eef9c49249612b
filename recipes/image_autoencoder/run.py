"""Image autoencoders on scikit-learn's 8x8 digits: code size, denoising, super-resolution,
anomaly detection, and a linear autoencoder against PCA.

    python recipes/image_autoencoder/run.py                  # every study, seed 1
    python recipes/image_autoencoder/run.py --studies pca --seeds 1 2 3

Every model is the toolkit's: ``VisionEncoder`` (an MLP per image, or one Linear) -> context
vector (the code) -> ``VectorDecoder`` (an MLP, or one Linear) trained with ``mse_loss``, in
``VectorAutoencoder``. Images are split by image (``split_by_image``): errors are measured on
test images never trained on. Errors are mean squared error per pixel, pixels in [0, 1].

Studies (``--studies``):
  sizes     test error against code size (2 .. 32), against PCA with as many components
  pca       a linear autoencoder against PCA at the same code size: errors, and the principal
            angles between the decoder's subspace and PCA's (they must match)
  denoise   Gaussian noise (sigma 0.3) and masking noise (30% of pixels set to 0): error against
            the clean image, for an autoencoder trained on clean inputs and one trained denoising
  superres  4x4 (2x2 mean pooling) in, 8x8 out, against bicubic upsampling of the 4x4 image
  anomaly   reconstruction error as an anomaly score: test digits against letters rendered from
            a font, uniform noise, and digits shifted by 3 pixels; ROC AUC
  binary    a binary code (``Bottleneck("binary")``: noisy sigmoid, rounded at inference) and
            Hamming retrieval: precision@k of same-digit training images for each test image,
            against random codes of the same size
Writes ``results.json``, ``results.md`` and pictures (``denoise.png``, ``codes.png``) under ``--output``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "autoencoder"))

from anomaly import roc_auc  # noqa: E402  (the text autoencoder recipe's ROC AUC)

from seq2seq.data import images as image_data  # noqa: E402
from seq2seq.errors import Seq2SeqError  # noqa: E402
from seq2seq.models import Bottleneck  # noqa: E402
from seq2seq.models.vision import VectorAutoencoder, VectorDecoder, VisionEncoder, as_items, mse_loss  # noqa: E402
from seq2seq.plots import pyplot  # noqa: E402

STUDIES = ("sizes", "pca", "denoise", "superres", "anomaly", "binary")


# ------------------------------------------------------------------------------------ models
def autoencoder(code: int, linear: bool = False, in_shape=(8, 8), hidden: int = 128) -> VectorAutoencoder:
    """MLP encoder -> code (no activation) -> MLP decoder (sigmoid pixels); ``linear``: one Linear
    each way (and a linear map to the code), nothing else. A tanh code with sigmoid pixels stayed
    at the mean image (test MSE 0.073 for codes of 2 to 16) on these digits: the initial codes
    hardly vary between images, and training never left that plateau."""
    if linear:
        encoder = VisionEncoder(in_shape, code, item="linear", context_activation="none", dropout=0.0)
        return VectorAutoencoder(encoder, VectorDecoder(code, (8, 8), hidden=0, output="none"))
    encoder = VisionEncoder(in_shape, hidden, item="mlp", context_dim=code, dropout=0.0, context_activation="none")
    return VectorAutoencoder(encoder, VectorDecoder(code, (8, 8), hidden=hidden))


def fit(
    model: VectorAutoencoder,
    x: np.ndarray,
    y: Optional[np.ndarray] = None,
    steps: int = 1500,
    lr: float = 3e-3,
    batch: int = 128,
    noise=None,
    seed: int = 1,
) -> VectorAutoencoder:
    """Adam on MSE of model(x) against y (default x); ``noise(batch, generator)`` corrupts the input
    of every batch (denoising training)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    xs, ys = torch.from_numpy(x), torch.from_numpy(x if y is None else y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(xs), (min(batch, len(xs)),), generator=g)
        inp = xs[idx] if noise is None else noise(xs[idx], g)
        src, mask = as_items(inp, inp.dim() - 1)
        loss = model.loss(src, mask, ys[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def reconstruct(model: VectorAutoencoder, x: np.ndarray) -> np.ndarray:
    src, mask = as_items(torch.from_numpy(x), x.ndim - 1)
    return model(src, mask).numpy()


@torch.no_grad()
def codes(model: VectorAutoencoder, x: np.ndarray) -> np.ndarray:
    src, mask = as_items(torch.from_numpy(x), x.ndim - 1)
    return model.code(src, mask)[0].numpy()


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(mse_loss(torch.from_numpy(a), torch.from_numpy(b)).mean())


# ------------------------------------------------------------------------------------ PCA
def pca(train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), components (D, k)) of the rows of ``train`` (N, D)."""
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    return mean, vt[:k].T


def pca_reconstruct(x: np.ndarray, mean: np.ndarray, comps: np.ndarray) -> np.ndarray:
    flat = x.reshape(len(x), -1) - mean
    return (flat @ comps @ comps.T + mean).reshape(x.shape).astype(np.float32)


def principal_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Principal angles in degrees between the column spaces of a (D, k) and b (D, k), ascending."""
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    cosines = np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), -1.0, 1.0)
    return np.sort(np.degrees(np.arccos(cosines)))


def linear_ae_subspace(model: VectorAutoencoder) -> np.ndarray:
    """The (D, k) matrix whose column space is the linear decoder's output subspace."""
    return model.decoder.net.weight.detach().numpy()


# ------------------------------------------------------------------------------------ corruptions
def gaussian(sigma: float):
    def corrupt(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0.0, 1.0)

    return corrupt


def masking(share: float):
    def corrupt(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return x * (torch.rand(x.shape, generator=g) >= share).to(x.dtype)

    return corrupt


def downsample(x: np.ndarray) -> np.ndarray:
    """(N, 8, 8) -> (N, 4, 4): the mean of each 2x2 block."""
    return x.reshape(len(x), 4, 2, 4, 2).mean(axis=(2, 4)).astype(np.float32)


def bicubic(x4: np.ndarray) -> np.ndarray:
    """(N, 4, 4) -> (N, 8, 8) bicubic upsampling (clipped to [0, 1])."""
    up = F.interpolate(torch.from_numpy(x4).unsqueeze(1), scale_factor=2, mode="bicubic", align_corners=False)
    return up.squeeze(1).clamp(0.0, 1.0).numpy()


# ------------------------------------------------------------------------------------ anomalies
def letters(count: int, rng: np.random.Generator) -> np.ndarray:
    """Capital letters rendered with Pillow's built-in font, centred, scaled to 8x8 like the digits."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    out = []
    for i in range(count):
        ch = chr(ord("A") + int(rng.integers(26)))
        img = Image.new("L", (16, 16), 0)
        ImageDraw.Draw(img).text((4 + int(rng.integers(-1, 2)), 2 + int(i % 2)), ch, fill=255, font=font)
        out.append(np.asarray(img.resize((8, 8), Image.BICUBIC), dtype=np.float32) / 255.0)
    return np.clip(np.stack(out) * 1.0, 0.0, 1.0).astype(np.float32)


def shifted(x: np.ndarray, pixels: int = 3) -> np.ndarray:
    """Digits moved right by ``pixels`` (the left columns become empty)."""
    out = np.zeros_like(x)
    out[:, :, pixels:] = x[:, :, :-pixels]
    return out


# ------------------------------------------------------------------------------------ studies
def study_sizes(train, test, args, seed) -> list[dict]:
    rows = []
    for k in args.code_sizes:
        model = fit(autoencoder(k), train, steps=args.steps, seed=seed)
        mean, comps = pca(train.reshape(len(train), -1), k)
        rows.append(
            {
                "code": k,
                "autoencoder_test_mse": mse(reconstruct(model, test), test),
                "pca_test_mse": mse(pca_reconstruct(test, mean, comps), test),
            }
        )
    return rows


def study_pca(train, test, args, seed) -> list[dict]:
    """Per code size in ``--pca-codes``: a linear AE (full-batch Adam) against PCA."""
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    variances = np.linalg.svd(flat_train - flat_train.mean(axis=0), compute_uv=False) ** 2 / len(flat_train)
    rows = []
    for k in args.pca_codes:
        linear = autoencoder(k, linear=True, in_shape=(64,))
        model = fit(linear, flat_train, train, steps=args.linear_steps, lr=1e-2, batch=len(train), seed=seed)
        mean, comps = pca(flat_train, k)
        angles = principal_angles(linear_ae_subspace(model), comps)
        rows.append(
            {
                "code": k,
                "eigengap": float(variances[k - 1] / variances[k]),  # variance of component k over k+1
                "linear_ae_test_mse": mse(reconstruct(model, flat_test), test),
                "pca_test_mse": mse(pca_reconstruct(test, mean, comps), test),
                "principal_angles_deg": angles.round(3).tolist(),
                "largest_angle_deg": float(angles.max()),
            }
        )
    return rows


def study_denoise(train, test, args, seed, out: Path) -> dict:
    k = args.code
    clean_model = fit(autoencoder(k), train, steps=args.steps, seed=seed)
    result = {}
    g = torch.Generator().manual_seed(seed + 100)
    for name, corrupt in (("gaussian 0.3", gaussian(0.3)), ("masking 30%", masking(0.3))):
        noisy = corrupt(torch.from_numpy(test), g).numpy()
        dae = fit(autoencoder(k), train, steps=args.steps, noise=corrupt, seed=seed)
        result[name] = {
            "noisy_input_mse": mse(noisy, test),
            "clean_trained_mse": mse(reconstruct(clean_model, noisy), test),
            "denoising_trained_mse": mse(reconstruct(dae, noisy), test),
        }
        if seed == args.seeds[0]:
            picture(
                out / f"denoise_{name.split()[0]}.png",
                [test[:8], noisy[:8], reconstruct(clean_model, noisy)[:8], reconstruct(dae, noisy)[:8]],
                ["clean", "noisy", "AE (clean-trained)", "denoising AE"],
            )
    return result


def study_superres(train, test, args, seed) -> dict:
    model = fit(autoencoder(args.code, in_shape=(4, 4)), downsample(train), train, steps=args.steps, seed=seed)
    small = downsample(test)
    return {"autoencoder_mse": mse(reconstruct(model, small), test), "bicubic_mse": mse(bicubic(small), test)}


def study_anomaly(train, test, args, seed) -> dict:
    model = fit(autoencoder(args.code), train, steps=args.steps, seed=seed)
    rng = np.random.default_rng(seed)

    def score(x: np.ndarray) -> np.ndarray:
        return mse_loss(torch.from_numpy(reconstruct(model, x)), torch.from_numpy(x)).numpy()

    normal = score(test)
    others = {
        "letters (font)": letters(len(test), rng),
        "uniform noise": rng.random(test.shape, dtype=np.float32),
        "digits shifted 3 px": shifted(test),
    }
    return {name: roc_auc(normal, score(x)) for name, x in others.items()}


def precision_at_k(query_bits, query_labels, db_bits, db_labels, k: int) -> float:
    """Mean share of same-label items among each query's k nearest database items by Hamming
    distance (ties broken by index)."""
    distance = (query_bits[:, None, :] != db_bits[None, :, :]).sum(axis=-1)  # (Q, N)
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]
    return float((db_labels[nearest] == query_labels[:, None]).mean())


def study_binary(train, test, train_labels, test_labels, args, seed) -> dict:
    k = args.bits
    encoder = VisionEncoder((8, 8), 128, item="mlp", context_dim=k, dropout=0.0)
    # Linear pixels: with sigmoid pixels this binary autoencoder stayed at the mean image (one code for all)
    decoder = VectorDecoder(k, (8, 8), 128, output="none")
    model = VectorAutoencoder(encoder, decoder, Bottleneck("binary", k, noise=args.binary_noise))
    fit(model, train, steps=args.steps, seed=seed)
    db, queries = codes(model, train) > 0.5, codes(model, test) > 0.5
    rng = np.random.default_rng(seed)
    random_db, random_queries = rng.random(db.shape) < 0.5, rng.random(queries.shape) < 0.5
    result = {
        "bits": k,
        "test_mse": mse(reconstruct(model, test), test),
        "distinct_test_codes": len({q.tobytes() for q in queries}),
    }
    for top in (1, 10, 50):
        result[f"precision@{top}"] = precision_at_k(queries, test_labels, db, train_labels, top)
        result[f"random precision@{top}"] = precision_at_k(random_queries, test_labels, random_db, train_labels, top)
    return result


def picture(path: Path, rows: list[np.ndarray], labels: list[str]) -> None:
    try:
        plt = pyplot("the pictures")
    except Seq2SeqError:
        return
    fig, axes = plt.subplots(len(rows), len(rows[0]), figsize=(len(rows[0]) * 0.9, len(rows) * 1.0), dpi=100)
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c, img in enumerate(row):
            axes[r][c].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        axes[r][0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def code_map(train, test, labels_test, args, seed, path: Path) -> None:
    try:
        plt = pyplot("the code map")
    except Seq2SeqError as e:
        print(f"{e}: no code map", file=sys.stderr)
        return
    z = codes(fit(autoencoder(2), train, steps=args.steps, seed=seed), test)
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=110)
    points = ax.scatter(z[:, 0], z[:, 1], c=labels_test, cmap="tab10", s=8)
    fig.colorbar(points, ax=ax, label="digit")
    ax.set_title("2-D codes of test digits (autoencoder, code size 2)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", nargs="+", choices=STUDIES, default=list(STUDIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--code-sizes", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    parser.add_argument(
        "--code", type=int, default=16, help="code size of the denoising, super-resolution, anomaly AEs"
    )
    parser.add_argument("--pca-codes", type=int, nargs="+", default=[3, 4, 8])
    parser.add_argument("--bits", type=int, default=16, help="binary code size")
    parser.add_argument("--binary-noise", type=float, default=1.0, help="std of the noise before the code's sigmoid")
    parser.add_argument("--steps", type=int, default=1500, help="updates per autoencoder (batches of 128)")
    parser.add_argument("--linear-steps", type=int, default=2000, help="full-batch updates of the linear AE")
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="runs/image_autoencoder")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    try:
        images, labels = image_data.load_digits()
    except Seq2SeqError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    split = image_data.split_by_image(labels, (0.7, 0.0, 0.3), seed=args.data_seed)
    train, test = images[split["train"]], images[split["test"]]
    results: dict = {s: [] for s in args.studies}
    for seed in args.seeds:
        for s in args.studies:
            if s == "denoise":
                results[s].append(study_denoise(train, test, args, seed, out))
            elif s == "binary":
                labels_train, labels_test = labels[split["train"]], labels[split["test"]]
                results[s].append(study_binary(train, test, labels_train, labels_test, args, seed))
            else:
                results[s].append(
                    {"sizes": study_sizes, "pca": study_pca, "superres": study_superres, "anomaly": study_anomaly}[s](
                        train, test, args, seed
                    )
                )
            print(f"seed {seed} {s}: {json.dumps(results[s][-1], ensure_ascii=False)}", flush=True)
    if "sizes" in args.studies:
        code_map(train, test, labels[split["test"]], args, args.seeds[0], out / "codes.png")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    lines = [
        f"Image autoencoders on 8x8 digits: {len(train)} training and {len(test)} test images, seeds "
        f"{' '.join(map(str, args.seeds))}; test MSE per pixel (mean ± std over seeds)",
        "",
    ]
    if "sizes" in results:
        lines += ["| code size | autoencoder | PCA |", "| ---: | ---: | ---: |"]
        for i, k in enumerate(args.code_sizes):
            lines.append(
                f"| {k} | {mean_std([r[i]['autoencoder_test_mse'] for r in results['sizes']])} "
                f"| {mean_std([r[i]['pca_test_mse'] for r in results['sizes']])} |"
            )
        lines.append("")
    if "pca" in results:
        lines += [
            "| code | variance ratio of components k and k+1 | linear AE test MSE | PCA test MSE | principal "
            "angles (degrees, seed 1) |",
            "| ---: | ---: | ---: | ---: | --- |",
        ]
        for i, k in enumerate(args.pca_codes):
            r = [x[i] for x in results["pca"]]
            angles = ", ".join(f"{a:.2f}" for a in r[0]["principal_angles_deg"])
            lines.append(
                f"| {k} | {r[0]['eigengap']:.2f} | {mean_std([x['linear_ae_test_mse'] for x in r])} "
                f"| {mean_std([x['pca_test_mse'] for x in r])} | {angles} |"
            )
        lines.append("")
    if "denoise" in results:
        lines += ["| noise | noisy input | AE trained clean | denoising AE |", "| --- | ---: | ---: | ---: |"]
        for name in results["denoise"][0]:
            cells = [
                mean_std([x[name][key] for x in results["denoise"]])
                for key in ("noisy_input_mse", "clean_trained_mse", "denoising_trained_mse")
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if "superres" in results:
        r = results["superres"]
        lines += [
            f"Super-resolution 4x4 -> 8x8: autoencoder {mean_std([x['autoencoder_mse'] for x in r])}, "
            f"bicubic {mean_std([x['bicubic_mse'] for x in r])}",
            "",
        ]
    if "anomaly" in results:
        lines += ["| anomalies (vs test digits) | ROC AUC |", "| --- | ---: |"]
        for name in results["anomaly"][0]:
            lines.append(f"| {name} | {mean_std([x[name] for x in results['anomaly']])} |")
        lines.append("")
    if "binary" in results:
        r = results["binary"]
        lines += [
            f"Binary codes ({args.bits} bits), Hamming retrieval of same-digit training images:",
            "",
            "| | binary code | random code |",
            "| --- | ---: | ---: |",
        ]
        for top in (1, 10, 50):
            lines.append(
                f"| precision@{top} | {mean_std([x[f'precision@{top}'] for x in r])} "
                f"| {mean_std([x[f'random precision@{top}'] for x in r])} |"
            )
        lines.append("")
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text, encoding="utf-8")
    print("\n" + text + f"total wall time {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
