"""Images and vectors in and out: VisionEncoder, ItemClassSeq2Seq, VectorDecoder, data/images.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq.data import images as image_data
from seq2seq.errors import DataError
from seq2seq.models import GRUDecoder, Seq2SeqModel, TransformerDecoder
from seq2seq.models.vision import (
    ItemClassSeq2Seq,
    VectorAutoencoder,
    VectorDecoder,
    VisionEncoder,
    as_items,
    item_cross_entropy,
    mse_loss,
)

HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAS_PIL = importlib.util.find_spec("PIL") is not None
needs_sklearn = pytest.mark.skipif(not HAS_SKLEARN, reason="scikit-learn is not installed (pip install -e .[images])")
needs_pil = pytest.mark.skipif(not HAS_PIL, reason="Pillow is not installed (pip install -e .[images])")

D = 32
ENCODERS = [
    ("cnn", "none"),
    ("cnn", "gru"),
    ("cnn", "transformer"),
    ("mlp", "none"),
    ("mlp", "gru"),
    ("linear", "transformer"),
]
DECODERS = [
    ("gru", "none"),
    ("gru", "bahdanau"),
    ("gru", "luong"),
    ("transformer", "none"),
    ("transformer", "multihead"),
]


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(3, 4, 8, 8, generator=g)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    return src, mask


def make_decoder(kind: str, attention: str, vocab: int = 13) -> torch.nn.Module:
    if kind == "gru":
        return GRUDecoder(vocab, D, attention=attention, dropout=0.0)
    return TransformerDecoder(vocab, D, layers=1, heads=2, ffn_dim=64, attention=attention, dropout=0.0)


@pytest.mark.parametrize("item,sequence", ENCODERS)
def test_shapes_masks_and_padding(item: str, sequence: str) -> None:
    torch.manual_seed(0)
    enc = VisionEncoder((8, 8), D, item=item, sequence=sequence, context_dim=24, heads=2).eval()
    src, mask = batch()
    out = enc(src, mask)
    assert out.states.shape == (3, 4, D) and out.context.shape == (3, 24)
    assert torch.equal(out.mask, mask)
    assert out.states[~mask].abs().max() == 0  # padding positions are zero
    # A row encodes the same alone (no padding) as inside a padded batch, whatever the padding holds.
    noisy = src.clone()
    noisy[~mask] = 5.0
    again = enc(noisy, mask)
    alone = enc(src[1:2, :1], mask[1:2, :1])
    torch.testing.assert_close(again.context, out.context)
    torch.testing.assert_close(alone.context[0], out.context[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone.states[0, 0], out.states[1, 0], atol=1e-5, rtol=1e-5)


def test_vectors_and_single_items() -> None:
    enc = VisionEncoder((20,), D, item="mlp")
    src, mask = as_items(torch.randn(5, 20), item_ndim=1)
    out = enc(src, mask)
    assert src.shape == (5, 1, 20) and out.states.shape == (5, 1, D) and out.context.shape == (5, D)
    with pytest.raises(ValueError, match="shape"):
        enc(torch.randn(5, 1, 21), mask)
    with pytest.raises(ValueError, match="cnn"):
        VisionEncoder((20,), D, item="cnn")


@pytest.mark.parametrize("dec_kind,attention", DECODERS)
def test_pairs_with_every_decoder_and_gradients_reach_every_part(dec_kind: str, attention: str) -> None:
    torch.manual_seed(0)
    enc = VisionEncoder((8, 8), D, sequence="gru", dropout=0.0)
    model = Seq2SeqModel(enc, make_decoder(dec_kind, attention)).eval()
    src, mask = batch()
    tgt = torch.randint(1, 13, (3, 5))
    logits = model(src, mask, tgt)
    assert logits.shape == (3, 5, 13)
    # step matches teacher forcing (the search path)
    encoded = model.encode(src, mask)
    state = model.decoder.init_state(encoded)
    step_logits, state = model.decoder.step(tgt[:, 0], encoded, state)
    torch.testing.assert_close(step_logits, logits[:, 0], atol=1e-5, rtol=1e-4)
    model.train()
    model(src, mask, tgt).logsumexp(-1).sum().backward()
    unused = {"encoder.sequence.embedding.weight"}  # the GRU's one-row token table: codes replace it
    if attention == "none":  # per-position states are not read without attention
        unused |= {"encoder.sequence.out_proj.weight", "encoder.sequence.out_proj.bias"}
    if attention == "multihead":  # the Transformer decoder reads only the states when it attends
        unused |= {"encoder.sequence.context_proj.weight", "encoder.sequence.context_proj.bias"}
    for name, p in model.named_parameters():
        if name not in unused:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_pairs_with_the_bag_of_words_head() -> None:
    """The bag-of-words head (models/bow.py) reads an image encoder's context vector as a token
    encoder's: one distribution over the vocabulary per input, gradients back to the CNN."""
    from seq2seq.models.bow import BagOfWordsDecoder, bag_of_words_nll

    torch.manual_seed(0)
    enc = VisionEncoder((8, 8), D, sequence="gru", context_dim=24, dropout=0.0)
    model = Seq2SeqModel(enc, BagOfWordsDecoder(13, 24))
    src, mask = batch()
    tgt = torch.randint(3, 13, (3, 5))
    logits = model(src, mask, tgt)
    assert logits.shape == (3, 13)
    loss, _, tokens = bag_of_words_nll(logits, tgt)
    assert tokens == 15
    loss.backward()
    cnn = [p for n, p in model.named_parameters() if n.startswith("encoder.item")]
    assert cnn and all(p.grad is not None and p.grad.abs().sum() > 0 for p in cnn)


def test_item_class_interface_layout_and_staged_halves() -> None:
    torch.manual_seed(0)
    enc = VisionEncoder((8, 8), D, dropout=0.0)
    model = ItemClassSeq2Seq(enc, make_decoder("gru", "none"), classes=10, blocks=9)
    src, mask = batch()
    encoded = model.encoder(src, mask)
    item = model.item_logits(encoded).argmax(-1)  # (3, 4)
    blocks = model.to_interface(encoded).view(3, 9, 11).argmax(-1)
    for row in range(3):
        n = int(mask[row].sum())
        # right-aligned: the last item is block 0 (units), blocks beyond the items are class 10
        assert blocks[row, :n].tolist() == item[row, :n].flip(0).tolist()
        assert blocks[row, n:].eq(10).all()
    assert model.encode(src, mask).context.shape == (3, D)
    left = ItemClassSeq2Seq(enc, make_decoder("gru", "none"), 10, 9, align="left")
    left.context_head = model.context_head
    assert left.to_interface(encoded).view(3, 9, 11).argmax(-1)[0, :3].tolist() == item[0, :3].tolist()
    # staged halves: the decoder reads given one-hot vectors, the encoder is scored per item
    onehot = torch.zeros(3, 99)
    onehot.view(3, 9, 11)[:, :, 10] = 1
    assert model.decoder(torch.ones(3, 2, dtype=torch.long), model.from_interface(onehot)).shape == (3, 2, 13)
    labels = torch.randint(0, 10, (3, 4))
    assert item_cross_entropy(model.item_logits(encoded), mask, labels).ndim == 0
    with pytest.raises(ValueError, match="blocks"):
        model.to_interface(model.encoder(torch.rand(1, 10, 8, 8), torch.ones(1, 10, dtype=torch.bool)))


def _prototypes() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(4, 8, 8, generator=g) > 0.5).float()  # 4 "digit" classes


def test_overfits_image_sequences_to_words() -> None:
    """Sequences of 1-3 noisy prototype images -> their class ids as tokens (+EOS); it must learn."""
    torch.manual_seed(0)
    protos = _prototypes()
    g = torch.Generator().manual_seed(2)
    classes = torch.randint(0, 4, (16, 3), generator=g)
    lengths = torch.randint(1, 4, (16,), generator=g)
    mask = torch.arange(3).unsqueeze(0) < lengths.unsqueeze(1)
    src = protos[classes] + 0.1 * torch.rand(16, 3, 8, 8, generator=g)
    bos, eos, pad = 1, 2, 0
    tgt = torch.full((16, 5), pad)
    for i in range(16):
        seq = [bos] + [3 + int(c) for c in classes[i, : lengths[i]]] + [eos]
        tgt[i, : len(seq)] = torch.tensor(seq)
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    encoder = VisionEncoder((8, 8), D, sequence="gru", dropout=0.0, channels=(8, 16))
    model = Seq2SeqModel(encoder, make_decoder("gru", "luong", 7))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = None
    for _ in range(60):
        logits = model(src, mask, tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=pad)
        before = loss.item() if before is None else before
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    pred = model(src, mask, tgt_in).argmax(-1)
    real = tgt_out.ne(pad)
    assert loss.item() < before / 20
    assert pred[real].eq(tgt_out[real]).all()


def test_vector_decoder_and_autoencoder_learn_with_mse() -> None:
    torch.manual_seed(0)
    head = VectorDecoder(6, (8, 8), hidden=32)
    assert head(torch.randn(5, 6)).shape == (5, 8, 8)
    assert VectorDecoder(6, (10,), hidden=0, output="none")(torch.randn(2, 6)).shape == (2, 10)
    assert mse_loss(torch.ones(2, 3), torch.zeros(2, 3)).tolist() == [1.0, 1.0]
    protos = _prototypes()
    src, mask = as_items(protos, item_ndim=2)
    model = VectorAutoencoder(VisionEncoder((8, 8), 16, item="mlp", dropout=0.0), VectorDecoder(16, (8, 8), 64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(src, mask, protos).item()
    for _ in range(150):
        loss = model.loss(src, mask, protos)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model(src, mask).shape == (4, 8, 8)
    assert loss.item() < first / 20


# ----------------------------------------------------------------------------- data
@needs_sklearn
def test_split_by_image_is_disjoint_and_stratified() -> None:
    images, labels = image_data.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    split = image_data.split_by_image(labels, (0.6, 0.1, 0.3), seed=3)
    sets = {k: set(v.tolist()) for k, v in split.items()}
    assert (
        not (sets["train"] & sets["test"])
        and not (sets["train"] & sets["valid"])
        and not (sets["valid"] & sets["test"])
    )
    assert len(sets["train"] | sets["valid"] | sets["test"]) == 1797
    for name, share in (("train", 0.6), ("test", 0.3)):
        counts = np.bincount(labels[split[name]], minlength=10) / np.bincount(labels, minlength=10)
        assert np.all(np.abs(counts - share) < 0.02), name
    assert np.array_equal(image_data.split_by_image(labels, seed=3)["test"], split["test"])


def test_compose_uses_only_the_pool() -> None:
    images = np.arange(30, dtype=np.float32).reshape(30, 1, 1) * np.ones((1, 8, 8), np.float32)
    labels = np.arange(30) % 10
    pool = image_data.by_label(np.arange(10, 30), labels)  # images 0-9 are "test": never used
    x, mask, digits = image_data.compose(["42", "7", "100"], images, pool, np.random.default_rng(0))
    assert x.shape == (3, 3, 8, 8) and mask.sum() == 6
    assert digits[0, :2].tolist() == [4, 2] and digits[2].tolist() == [1, 0, 0]
    used = x[mask][:, 0, 0]
    assert np.all(used >= 10) and np.all(used.astype(int) % 10 == digits[mask])
    assert not x[~mask].any()


def test_load_npy_checks_and_names_the_file(tmp_path) -> None:
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((3, 8, 8), dtype=np.float64))
    assert image_data.load_npy(good, (8, 8)).dtype == np.float32
    with pytest.raises(DataError, match="good.npy: expected rows of shape 4x4"):
        image_data.load_npy(good, (4, 4))
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[0.0, 1.0], [np.nan, 2.0]]))
    with pytest.raises(DataError, match="nan.npy: 1 NaN or infinite value.*row 1"):
        image_data.load_npy(nan)
    junk = tmp_path / "junk.npy"
    junk.write_text("not an array")
    with pytest.raises(DataError, match="junk.npy: cannot read"):
        image_data.load_npy(junk)


@needs_pil
def test_png_round_trip_invert_and_unreadable(tmp_path) -> None:
    img = np.zeros((8, 8), dtype=np.float32)
    img[2:6, 3:5] = 1.0  # light ink on dark, as the digits
    path = image_data.save_png(img, tmp_path / "d.png")
    back = image_data.load_image_files([path])
    assert back.shape == (1, 8, 8) and np.abs(back[0] - img).max() < 1 / 255 + 1e-6
    paper = image_data.save_png(1.0 - img, tmp_path / "paper.png", scale=4)  # dark ink on paper, 32x32
    flipped = image_data.load_image_files([paper])[0]
    assert flipped.shape == (8, 8) and flipped[3, 3] > 0.8 and flipped[0, 0] < 0.2
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"no image")
    with pytest.raises(DataError, match="bad.png: cannot read an image"):
        image_data.load_image_files([path, bad])


# ----------------------------------------------------------------------------- the recipe
HAS_NUM2WORDS = importlib.util.find_spec("num2words") is not None


@pytest.mark.slow
@needs_sklearn
@pytest.mark.skipif(not HAS_NUM2WORDS, reason="num2words is not installed (pip install -e .[recipes])")
def test_digit_images_recipe_small(tmp_path) -> None:
    """The sequence task, every regime, a few updates: the tables, strata and per-seed scores come
    out, the vocabulary covers the validation targets, the sizes are the ones asked for."""
    import runpy

    recipe = runpy.run_path(str(Path(__file__).parents[1] / "recipes" / "digit_images" / "run.py"), run_name="recipe")
    out = tmp_path / "run"
    argv = ["--tasks", "sequence", "--langs", "ko", "--seeds", "1", "--updates", "8", "--evals", "1", "--sizes", "5"]
    argv += ["--batch", "8", "--pool-size", "100", "--valid-size", "10", "--test-size", "10", "--every-below", "100"]
    argv += ["--output", str(out)]
    assert recipe["main"](argv) == 0
    result = json.loads((out / "results.json").read_text())
    rows = {r["regime"]: r for r in result["rows"]}
    assert set(rows) == set(recipe["REGIMES"])
    staged = rows["staged"]
    assert staged["train_images"] == 50 and staged["task"] == "sequence" and len(staged["scores"]) == 1
    assert staged["strata"]["overall"][2] == 10 + 90  # unseen numerals + every 2-digit number
    assert staged["strata"]["length  2"][2] >= 90
    assert "| sequence | ko | 50 | staged + fine-tuning |" in (out / "results.md").read_text()
    # another seed, summarised with the first (--merge); other settings cannot be merged
    more = [
        *argv[: argv.index("--seeds")],
        "--seeds",
        "2",
        *argv[argv.index("--seeds") + 2 : -1],
        str(tmp_path / "two"),
    ]
    assert recipe["main"]([*more, "--merge", str(out / "results.json")]) == 0
    two = {r["regime"]: r for r in json.loads((tmp_path / "two" / "results.json").read_text())["rows"]}
    assert two["staged"]["seeds"] == [1, 2] and two["staged"]["scores"][0] == staged["scores"][0]
    with pytest.raises(SystemExit, match="other settings \\(updates\\)"):
        recipe["main"]([*more, "--updates", "9", "--merge", str(out / "results.json")])
    # --plot-from: the plot again from the results and a log of printed lines, nothing trained
    log = tmp_path / "single.log"
    log.write_text("noise\nsingle en 1078 images seed 1: end-to-end 95.6%, staged 96.7%, staged + fine-tuning 96.9%\n")
    log.write_text(
        log.read_text() + "single en 1078 images seed 2: end-to-end 94.8%, staged 96.9%, staged + fine-tuning 97.2%\n"
    )
    rows = recipe["printed_rows"](log)
    assert [r["regime"] for r in rows] == sorted(recipe["REGIMES"]) and rows[0]["scores"] == [95.6, 94.8]
    assert rows[0]["std"] == pytest.approx(0.5657, abs=1e-4) and rows[0]["train_images"] == 1078
    plot = tmp_path / "plot"
    assert recipe["main"](["--plot-from", str(tmp_path / "two" / "results.json"), str(log), "--output", str(plot)]) == 0
    assert (plot / "results.png").stat().st_size > 0 and not (plot / "results.json").exists()
    with pytest.raises(SystemExit, match="no results found"):
        recipe["main"](["--plot-from", str(tmp_path / "two" / "results.md"), "--output", str(plot)])


def test_linear_autoencoder_finds_the_pca_subspace() -> None:
    """A linear autoencoder (toolkit parts) trained to convergence spans PCA's subspace."""
    import runpy

    recipe = runpy.run_path(str(Path(__file__).parents[1] / "recipes" / "image_autoencoder" / "run.py"))
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((64, 3)))[0]  # 3 strong directions, then weak noise
    x = (rng.standard_normal((300, 3)) * [3.0, 2.0, 1.5]) @ basis.T + 0.05 * rng.standard_normal((300, 64)) + 0.5
    x = x.astype(np.float32)
    model = recipe["fit"](
        recipe["autoencoder"](3, linear=True, in_shape=(64,)), x, x.reshape(300, 8, 8), 400, 2e-2, 300
    )
    mean, comps = recipe["pca"](x, 3)
    angles = recipe["principal_angles"](recipe["linear_ae_subspace"](model), comps)
    assert angles.max() < 3.0, angles
    # the error of the projection on PCA's top 3 components (the optimum), within 5% (2 components: 14x the error)
    ae_mse = recipe["mse"](recipe["reconstruct"](model, x).reshape(300, 64), x)
    pca_mse = recipe["mse"](recipe["pca_reconstruct"](x, mean, comps), x)
    assert pca_mse <= ae_mse * (1 + 1e-4) and ae_mse == pytest.approx(pca_mse, rel=0.05), (ae_mse, pca_mse)
    assert recipe["principal_angles"](comps, rng.standard_normal((64, 3))).max() > 45  # the check can fail
    auc = recipe["roc_auc"](np.array([0.1, 0.2, 0.3]), np.array([0.25, 0.4, 0.5]))
    assert auc == pytest.approx(8 / 9)


def test_image_autoencoder_recipe_small(tmp_path) -> None:
    """recipes/image_autoencoder/run.py end to end, every study, a few updates: every table and
    picture comes out."""
    import runpy

    recipe = runpy.run_path(str(Path(__file__).parents[1] / "recipes" / "image_autoencoder" / "run.py"))
    out = tmp_path / "run"
    argv = ["--steps", "5", "--linear-steps", "5", "--code-sizes", "2", "--pca-codes", "2", "--bits", "8"]
    assert recipe["main"]([*argv, "--output", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == set(recipe["STUDIES"]) and all(len(v) == 1 for v in results.values())
    text = (out / "results.md").read_text()
    for words in ("| code size | autoencoder | PCA |", "linear AE test MSE", "denoising AE", "bicubic", "ROC AUC"):
        assert words in text, words
    assert "precision@10" in text
    assert {p.name for p in out.glob("*.png")} >= {"codes.png", "denoise_gaussian.png", "denoise_masking.png"}


def test_image_noise_and_pooled_inputs() -> None:
    from seq2seq.config import ModelConfig
    from seq2seq.models import build_model
    from seq2seq.models.vision import corrupt

    x = torch.full((200, 8, 8), 0.5)
    g = torch.Generator().manual_seed(0)
    masked = corrupt(x, "masking", 0.3, g)
    assert 0.25 < float(masked.eq(0).float().mean()) < 0.35 and set(masked.unique().tolist()) == {0.0, 0.5}
    noisy = corrupt(x, "gaussian", 0.3, torch.Generator().manual_seed(1))
    assert 0.0 <= noisy.min() and noisy.max() <= 1.0 and 0.25 < float((noisy - x).std()) < 0.32
    assert torch.equal(corrupt(x, "gaussian", 0.3, torch.Generator().manual_seed(1)), noisy)  # seeded
    assert corrupt(x, "none", 0.3) is x
    with pytest.raises(ValueError, match="blur"):
        corrupt(x, "blur", 0.3)
    # model.decoder=image builds an image autoencoder; downsample 2: 4x4 in, 8x8 out
    cfg = ModelConfig(encoder="cnn", decoder="image", item_shape=[8, 8], d_model=16, context_dim=4, downsample=2)
    model = build_model(cfg, 10, 10).eval()
    assert isinstance(model, VectorAutoencoder) and model.encoder.item_shape == (4, 4)
    images = torch.rand(3, 1, 8, 8)
    pooled = images.view(3, 1, 4, 2, 4, 2).mean(dim=(3, 5))
    torch.testing.assert_close(model.inputs(images), pooled)
    mask = torch.ones(3, 1, dtype=torch.bool)
    torch.testing.assert_close(model(images, mask), model(pooled, mask))
    assert model(images, mask).shape == (3, 8, 8)
    with pytest.raises(ValueError, match="downsample=3 must divide"):
        build_model(ModelConfig(encoder="mlp", decoder="image", item_shape=[8, 8], downsample=3), 10, 10)
    assert isinstance(build_model(ModelConfig(encoder="gru", decoder="gru"), 10, 10), Seq2SeqModel)
