"""Images as first-class inputs: config validation, ``seq2seq train`` on generated digit images and
on .npy splits, checkpoint -> Translator / ``seq2seq translate``, staged training through
per-image classes, and bad inputs named in errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from seq2seq.cli import main  # noqa: E402
from seq2seq.config import load_config  # noqa: E402
from seq2seq.data.image_sources import digits_split, place_value_targets  # noqa: E402
from seq2seq.errors import ConfigError, DataError, Seq2SeqError  # noqa: E402
from seq2seq.infer.translator import Translator  # noqa: E402
from seq2seq.train.trainer import Trainer  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digit_images" / "config.yaml"
AE_RECIPE = RECIPE.parents[1] / "image_autoencoder" / "config.yaml"
AE = ["task=autoencoder", "model.decoder=image", "train.early_stop_metric=loss"]  # the digits config as an autoencoder


def tiny(tmp_path: Path, *extra: str):
    """The recipe's config, shrunk to a few seconds."""
    return load_config(
        RECIPE,
        [
            f"train.output_dir={tmp_path / 'run'}",
            f"data.cache_dir={tmp_path / 'cache'}",
            "data.digits.train_size=300",
            "model.d_model=32",
            "train.max_steps=6",
            "train.valid_every=3",
            "train.progress=false",
            "train.precision=fp32",
            *extra,
        ],
    )


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["model.encoder=gru"], ["data.format=digits", "model.encoder to cnn"]),
        (["data.format=tsv"], ["model.encoder=cnn", "set data.format to images"]),
        (["model.encoder=cnn", "model.item_shape=[16]"], ["model.encoder=cnn reads images", "mlp"]),
        (["model.item_shape=[4, 4]"], ["data.format=digits gives 8x8", "model.item_shape"]),
        (["model.item_sequence=lstm"], ["model.item_sequence", "none, gru, transformer"]),
        (["data.digits.lang=fr"], ["data.digits.lang", "en, ko"]),
        (["data.digits.max_digits=0"], ["data.digits.min_digits", "max_digits"]),
        (["data.digits.fractions=[0.5, 0.5]"], ["data.digits.fractions", "three positive numbers"]),
        (["task=autoencoder"], ["task=autoencoder with model.encoder=cnn", "model.decoder to image"]),
        (["task=classification", "train.early_stop_metric=accuracy"], ["task=translation", "not classification"]),
        (["model.decoder=image"], ["model.decoder=image", "needs task=autoencoder"]),
        (["autoencoder.image_noise=gaussian"], ["autoencoder.image_noise is for image autoencoders"]),
        (["model.downsample=2"], ["model.downsample is for image autoencoders"]),
        ([*AE, "autoencoder.image_noise=blur"], ["autoencoder.image_noise", "none, gaussian, masking"]),
        ([*AE, "autoencoder.image_noise=masking", "autoencoder.image_noise_level=1.5"], ["in (0, 1)"]),
        ([*AE, "model.downsample=3"], ["model.downsample=3 must divide"]),
        ([*AE, "model.image_output=tanh"], ["model.image_output", "sigmoid, none"]),
        ([*AE, "model.item_sequence=gru"], ["one image per example"]),
        ([*AE[:2], "train.early_stop_metric=exact_match"], ["validated by its loss"]),
        (["model.item_classes=10", "model.context_target_dim=7"], ["model.context_target_dim to 11"]),
    ],
)
def test_config_errors_name_the_option(tmp_path, overrides, words):
    with pytest.raises(ConfigError) as e:
        tiny(tmp_path, *overrides)
    for word in words:
        assert word in str(e.value)


def test_item_classes_fill_the_interface_size(tmp_path):
    cfg = tiny(tmp_path, "model.item_classes=10", "model.context_target_blocks=3", "data.digits.max_digits=3")
    assert cfg.model.context_target_dim == 33


def test_digit_splits_share_no_image():
    from seq2seq.config import DataConfig

    d = DataConfig(format="digits")
    splits = {name: digits_split(d, name) for name in ("train", "valid", "test")}
    seen = [{arr.tobytes() for arr in s.items} for s in splits.values()]
    assert not (seen[0] & seen[2]) and not (seen[1] & seen[2])  # no test image elsewhere (sklearn has few duplicates)
    assert len(splits["test"].targets) == len(splits["test"].items)  # one digit: every test image once
    vectors = place_value_targets([np.array([4, 0])], classes=10, blocks=3).reshape(3, 11)
    assert vectors.argmax(1).tolist() == [0, 4, 10]  # units first, then tens, then no digit


def translate(best: Path, capsys, *args: str) -> tuple[int, str, str]:
    """``seq2seq translate --checkpoint BEST ARGS``, in this process: (status, stdout, stderr)."""
    capsys.readouterr()
    status = main(["translate", "--checkpoint", str(best), "--quiet", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_train_checkpoint_translate_round_trip(tmp_path, capsys):
    cfg = tiny(tmp_path, "model.item_shape=[]")
    result = Trainer(cfg).fit()
    best = result.output_dir / "best"
    translator = Translator.from_checkpoint(best, device="cpu")
    assert translator.item_shape == (8, 8)  # the data's shape, recorded in the checkpoint
    test = digits_split(cfg.data, "test")
    images = test.items[[e[0] for e in test.examples[:7]]]
    words = translator.translate(images)
    assert len(words) == 7 and all(w in test.targets for w in words if w)
    assert translator.translate(list(images[:, None])) == words  # (S, 8, 8) sequences of one image
    np.save(tmp_path / "x.npy", images)
    out = tmp_path / "out.txt"
    status, _, err = translate(best, capsys, "--input", str(tmp_path / "x.npy"), "--output", str(out))
    assert status == 0, err
    assert out.read_text(encoding="utf-8").splitlines() == words

    np.save(tmp_path / "bad.npy", np.zeros((3, 9), dtype=np.float32))
    status, out_text, err = translate(best, capsys, "--input", str(tmp_path / "bad.npy"))
    assert status == 2 and "bad.npy: expected an array of shape (N, 8, 8)" in err and not out_text
    status, _, err = translate(best, capsys, "--input", str(tmp_path / "missing.npy"))
    assert status == 2 and "missing.npy" in err
    with pytest.raises(DataError, match="input 1: NaN"):
        translator.translate([images[0], np.full((8, 8), np.nan)])


def test_npy_split_and_png_list(tmp_path, capsys):
    from seq2seq.data.images import save_png

    test = digits_split(load_config(None, []).data, "valid")
    data = tmp_path / "data"
    data.mkdir()
    for split, rows in (("train", slice(0, 120)), ("valid", slice(120, 160))):
        np.save(data / f"{split}.npy", test.items[rows])
        words = [test.targets[i] for i in range(len(test.targets))][rows]
        (data / f"{split}.tgt").write_text("".join(w + "\n" for w in words), encoding="utf-8")
    cfg = tiny(
        tmp_path, "data.format=images", f"data.path={data}", "data.test=", "model.encoder=mlp", "model.item_shape=[]"
    )
    best = Trainer(cfg).fit().output_dir / "best"
    for i in range(3):
        save_png(test.items[i], data / "png" / f"{i}.png")
    (data / "list.txt").write_text("png/0.png\npng/1.png\npng/2.png\n", encoding="utf-8")
    status, out, err = translate(best, capsys, "--input", str(data / "list.txt"))
    assert status == 0, err
    assert len(out.splitlines()) == 3
    (data / "list.txt").write_text("png/0.png\npng/9.png\n", encoding="utf-8")
    status, out, err = translate(best, capsys, "--input", str(data / "list.txt"))
    assert status == 2 and "list.txt: line 2: image file" in err and "9.png not found" in err

    (data / "valid.tgt").write_text("one\n", encoding="utf-8")
    images = ["data.format=images", f"data.path={data}", "model.encoder=mlp"]
    with pytest.raises(DataError, match=r"valid.npy has 40 input\(s\) but .*valid.tgt has 1 line"):
        Trainer(tiny(tmp_path / "a", *images)).fit()
    with pytest.raises(DataError, match="found neither .*nothere.npy"):
        Trainer(tiny(tmp_path / "b", *images, "data.train=nothere")).fit()


def test_staged_through_per_image_classes(tmp_path):
    staged = [
        "model.item_classes=10",
        "model.context_target_blocks=2",
        "data.digits.max_digits=2",
        "train.early_stop_metric=loss",
    ]
    enc = Trainer(tiny(tmp_path / "enc", *staged, "train.stage=encoder")).fit()
    dec = Trainer(tiny(tmp_path / "dec", *staged, "train.stage=decoder")).fit()
    joined = tiny(
        tmp_path / "ft",
        *staged,
        f"train.init_encoder={enc.output_dir / 'best'}",
        f"train.init_decoder={dec.output_dir / 'best'}",
        "train.max_steps=3",
    )
    ft = Trainer(joined).fit()
    translator = Translator.from_checkpoint(ft.output_dir / "best", device="cpu")
    test = digits_split(joined.data, "test")
    assert len(translator.translate(test.sources()[:5])) == 5
    # seq2seq join, as for text: the staged halves in one checkpoint, which translates images
    joining = ["--encoder", str(enc.output_dir / "best"), "--decoder", str(dec.output_dir / "best")]
    assert main(["join", *joining, "-o", str(tmp_path / "j")]) == 0
    together = Translator.from_checkpoint(tmp_path / "j", device="cpu")
    assert len(together.translate(test.sources()[:5])) == 5
    for name, weight in together.model.encoder.state_dict().items():  # the encoder stage's weights, unchanged
        torch.testing.assert_close(weight, enc_model(enc)[name], msg=name)
    # train.freeze: fine-tuning the joined model with the image encoder fixed leaves it bit for bit
    frozen = tiny(tmp_path / "frozen", *staged, f"train.init_encoder={tmp_path / 'j'}", "train.freeze=[encoder]")
    after = Trainer(frozen).fit()
    tuned = Translator.from_checkpoint(after.output_dir / "best", device="cpu").model
    for name, weight in tuned.encoder.state_dict().items():
        assert torch.equal(weight, together.model.encoder.state_dict()[name]), name


def enc_model(result) -> dict:
    """The encoder weights of a training run's best checkpoint."""
    return Translator.from_checkpoint(result.output_dir / "best", device="cpu").model.encoder.state_dict()


# ----------------------------------------------------------------------------- image autoencoders
def tiny_ae(tmp_path: Path, *extra: str):
    """recipes/image_autoencoder/config.yaml, shrunk to a few seconds."""
    return load_config(
        AE_RECIPE,
        [
            f"train.output_dir={tmp_path / 'run'}",
            f"data.cache_dir={tmp_path / 'cache'}",
            "model.d_model=32",
            "train.max_steps=150",
            "train.valid_every=75",
            "train.progress=false",
            *extra,
        ],
    )


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``seq2seq ARGS`` in this process: (status, stdout, stderr)."""
    capsys.readouterr()
    status = main([*args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def image_ae(tmp_path_factory) -> Path:
    """A small image autoencoder's best checkpoint (150 updates, ~3 s)."""
    tmp = tmp_path_factory.mktemp("image_ae")
    result = Trainer(tiny_ae(tmp)).fit()
    assert result.metric == "loss" and result.best_score < 0.06  # the mean training image scores 0.073
    return result.output_dir / "best"


def test_image_autoencoder_checkpoint_takes_arrays(image_ae):
    from seq2seq.infer.autoencoder import Autoencoder
    from seq2seq.models import VectorAutoencoder

    ae = Autoencoder.from_checkpoint(image_ae, device="cpu")
    assert isinstance(ae.model, VectorAutoencoder) and ae.image_shape == (8, 8)
    test = digits_split(load_config(None, []).data, "test").items[:12]
    codes = ae.encode(test)
    assert codes.shape == (12, 16) and codes.dtype == np.float32
    out = ae.reconstruct(test)
    assert out.shape == (12, 8, 8) and 0.0 <= out.min() and out.max() <= 1.0
    scores = ae.score(test)
    np.testing.assert_allclose(scores, ((out - test) ** 2).reshape(12, -1).mean(1), rtol=1e-5)
    assert scores.mean() < 0.06  # test images the model never saw
    noise = np.random.default_rng(0).random((12, 8, 8)).astype(np.float32)
    assert ae.score(noise).min() > scores.max()  # anomalies score higher
    assert np.allclose(ae.encode(list(test)), codes, atol=1e-6)  # a list of images, as one array
    with pytest.raises(DataError, match="input 1: NaN"):
        ae.score([test[0], np.full((8, 8), np.nan, np.float32)])
    with pytest.raises(DataError, match="one image per input"):
        ae.encode(test[None, :3])
    with pytest.raises(Seq2SeqError, match="binary code layer"):
        ae.codes(test)


def test_image_autoencoder_commands(image_ae, tmp_path, capsys):
    from seq2seq.data.images import save_png

    test = digits_split(load_config(None, []).data, "test").items[:5]
    np.save(tmp_path / "x.npy", test)
    ck = ["--checkpoint", str(image_ae), "--quiet"]
    status, _, err = cli(capsys, "encode", *ck, "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "c.npy"))
    assert status == 0, err
    assert np.load(tmp_path / "c.npy").shape == (5, 16)
    status, _, err = cli(capsys, "reconstruct", *ck, "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "r.npy"))
    assert status == 0, err
    rec = np.load(tmp_path / "r.npy")
    assert rec.shape == (5, 8, 8)
    status, _, err = cli(capsys, "reconstruct", *ck, "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "png"))
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [f"{i:05d}.png" for i in range(5)]
    status, out, err = cli(capsys, "score", *ck, "--input", str(tmp_path / "x.npy"), "--header", "--threshold", "1")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "mse\tflag" and len(lines) == 6 and all(line.endswith("\t0") for line in lines[1:])
    mse = [float(line.split("\t")[0]) for line in lines[1:]]
    np.testing.assert_allclose(mse, ((rec - test) ** 2).reshape(5, -1).mean(1), atol=2e-6)
    for i in range(2):  # image files, listed
        save_png(test[i], tmp_path / "img" / f"{i}.png")
    (tmp_path / "list.txt").write_text("img/0.png\nimg/1.png\n", encoding="utf-8")
    status, out, err = cli(capsys, "score", *ck, "--input", str(tmp_path / "list.txt"))
    assert status == 0 and len(out.splitlines()) == 2, err


def test_hash_and_search_image_codes(image_ae, tmp_path, capsys):
    """seq2seq hash / search on an image autoencoder's binary codes (model.bottleneck: binary):
    Hamming retrieval of training images by test images finds the query's digit far above chance."""
    from seq2seq.data.images import save_png

    result = Trainer(
        tiny_ae(tmp_path, "model.bottleneck=binary", "model.image_output=none", "train.max_steps=300")
    ).fit()
    ck = ["--checkpoint", str(result.output_dir / "best"), "--quiet"]
    data = load_config(None, []).data
    train, test = digits_split(data, "train"), digits_split(data, "test")
    np.save(tmp_path / "train.npy", train.items)
    np.save(tmp_path / "test.npy", test.items[:100])
    status, _, err = cli(capsys, "hash", *ck, "--input", str(tmp_path / "train.npy"), "-o", str(tmp_path / "i.npz"))
    assert status == 0 and f"indexed {len(train.items):,} images as 16-bit codes" in err, err
    status, out, err = cli(
        capsys, "search", *ck, "--index", str(tmp_path / "i.npz"), "--input", str(tmp_path / "test.npy"), "--top", "1"
    )
    assert status == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert [int(r[0]) for r in rows] == list(range(1, 101))
    assert all(r[3] == f"train.npy[{int(r[2]) - 1}]" for r in rows)  # items named by their row
    train_labels, test_labels = train.labels, test.labels
    hits = np.mean([train_labels[int(r[2]) - 1] == test_labels[int(r[0]) - 1] for r in rows])
    assert hits > 0.4, hits  # chance: 0.1
    for i in range(2):  # image files, listed: the index names them
        save_png(test.items[i], tmp_path / "img" / f"{i}.png")
    (tmp_path / "list.txt").write_text("img/0.png\nimg/1.png\n", encoding="utf-8")
    status, _, err = cli(capsys, "hash", *ck, "--input", str(tmp_path / "list.txt"), "-o", str(tmp_path / "l.npz"))
    assert status == 0, err
    status, out, err = cli(
        capsys, "search", *ck, "--index", str(tmp_path / "l.npz"), "--input", str(tmp_path / "list.txt"), "--top", "1"
    )
    assert status == 0 and [line.split("\t")[3] for line in out.splitlines()] == ["img/0.png", "img/1.png"], err
    # --real: cosine over context vectors, any image checkpoint; an index of another checkpoint is refused
    status, _, err = cli(
        capsys,
        "hash",
        "--checkpoint",
        str(image_ae),
        "--quiet",
        "--real",
        "--input",
        str(tmp_path / "test.npy"),
        "-o",
        str(tmp_path / "r.npz"),
    )
    assert status == 0 and "as context vectors (cosine)" in err, err
    query = ["--input", str(tmp_path / "test.npy"), "--top", "2"]
    status, out, err = cli(capsys, "search", "--checkpoint", str(image_ae), "--index", str(tmp_path / "r.npz"), *query)
    assert status == 0 and out.splitlines()[0].split("\t")[:3] == ["1", "1.0000", "1"], err
    status, _, err = cli(capsys, "search", *ck, "--index", str(tmp_path / "r.npz"), *query)
    assert status == 2 and "built with another checkpoint's codes" in err, err


@pytest.mark.parametrize("command", ["encode", "reconstruct", "score"])
def test_image_commands_name_bad_inputs(image_ae, tmp_path, capsys, command):
    nan = np.zeros((3, 8, 8), np.float32)
    nan[2, 1, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "shape.npy", np.zeros((3, 9), np.float32))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "list.txt").write_text("broken.png\n", encoding="utf-8")
    expected = {
        "nan.npy": "nan.npy: 1 NaN or infinite value(s), the first in row 2",
        "shape.npy": "shape.npy: expected an array of shape (N, 8, 8)",
        "list.txt": "broken.png: cannot read an image",
        "missing.npy": "missing.npy: cannot read a .npy array",
    }
    output = ["--output", str(tmp_path / "out.npy")] if command != "score" else []
    for name, message in expected.items():
        status, out, err = cli(capsys, command, "--checkpoint", str(image_ae), "--input", str(tmp_path / name), *output)
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["reconstruct", "--beam", "3", "-o", "r.npy"], "--beam does not apply to an image autoencoder"),
        (["reconstruct"], "--output FILE.npy (an array) or DIR (PNG files) is required"),
        (["encode", "--bits", "-o", "c.npy"], "binary code layer"),
        (["hash", "-o", "i.npz"], "binary code layer (model.bottleneck: binary)"),
        (["sample"], "seq2seq sample reads text lines"),
        (["translate"], "is an image autoencoder: it writes images, not text; use 'seq2seq reconstruct'"),
    ],
)
def test_image_autoencoder_refuses_what_does_not_apply(image_ae, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8), np.float32))
    command, *rest = args
    inputs = [] if command == "sample" else ["--input", "x.npy"]
    status, _, err = cli(capsys, command, "--checkpoint", str(image_ae), *inputs, *rest)
    assert status == 2 and message in err, err


def test_denoising_super_resolution_autoencoder(tmp_path):
    """Masking noise on pooled 4x4 inputs, 8x8 out: the encoder reads 4x4, the model pools 8x8
    inputs itself, score compares with the full image, and the noise reaches the loss."""
    from seq2seq.infer.autoencoder import Autoencoder
    from seq2seq.train.image_autoencoder import ImageAutoencoding

    extra = ["model.downsample=2", "autoencoder.image_noise=masking", "autoencoder.image_noise_level=0.5"]
    cfg = tiny_ae(tmp_path, *extra, "train.max_steps=4", "train.valid_every=4", "model.encoder=cnn")
    best = Trainer(cfg).fit().output_dir / "best"
    ae = Autoencoder.from_checkpoint(best, device="cpu")
    assert ae.item_shape == (4, 4) and ae.image_shape == (8, 8)
    full = digits_split(cfg.data, "test").items[:6]
    small = full.reshape(6, 4, 2, 4, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(ae.reconstruct(full), ae.reconstruct(small), atol=1e-5)
    assert ae.score(full).shape == (6,)
    with pytest.raises(DataError, match="8, 8"):
        ae.score(small)  # nothing to compare with
    objective = ImageAutoencoding(cfg)
    images = torch.rand(64, 1, 8, 8) + 0.1
    batch = type("B", (), {"indices": [0]})()
    noised = objective.noised(images, True, batch)
    assert 0.4 < float((noised == 0).float().mean()) < 0.6
    assert torch.equal(objective.noised(images, False, batch), objective.noised(images, False, batch))


@pytest.fixture(scope="module")
def word_model(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("words")
    return Trainer(tiny(tmp)).fit().output_dir / "best"


@pytest.mark.parametrize(
    "flags",
    [
        ["--resume", "--output", "o.txt"],
        ["--shard", "0/2"],
        ["--shard", "auto"],
        ["--strict"],
        ["--prefix-file", "p.txt"],
        ["--plot-attention", "maps"],
        ["--window", "5"],
        ["--batch-tokens", "100"],
    ],
)
def test_translate_refuses_text_flags_for_images(word_model, tmp_path, capsys, monkeypatch, flags):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8), np.float32))
    status, out, err = translate(word_model, capsys, "--input", "x.npy", *flags)
    assert status == 2 and not out
    assert err.strip().splitlines() == [
        f"seq2seq: error: {flags[0]} does not apply to a checkpoint that reads images or vectors"
    ]


def test_serve_refuses_image_checkpoints(word_model, capsys):
    pytest.importorskip("uvicorn")
    status, _, err = cli(capsys, "serve", "--checkpoint", str(word_model))
    assert status == 2 and "reads images or vectors, which seq2seq serve does not take" in err


def test_translate_names_bad_inputs(word_model, tmp_path, capsys):
    nan = np.zeros((3, 8, 8), np.float32)
    nan[1, 0, 0] = np.inf
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "shape.npy", np.zeros((3, 9), np.float32))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "list.txt").write_text("broken.png\n", encoding="utf-8")
    expected = {
        "nan.npy": "nan.npy: 1 NaN or infinite value(s), the first in row 1",
        "shape.npy": "shape.npy: expected an array of shape (N, 8, 8) (one input per row) or (N, S, 8, 8)",
        "list.txt": "broken.png: cannot read an image",
    }
    for name, message in expected.items():
        status, out, err = translate(word_model, capsys, "--input", str(tmp_path / name))
        assert status == 2 and not out and message in err and len(err.strip().splitlines()) == 1, err


def test_evaluate_reads_images(word_model, tmp_path, capsys):
    test = digits_split(load_config(None, []).data, "test")
    np.save(tmp_path / "x.npy", test.items[:7])
    (tmp_path / "ref.txt").write_text("".join(t + "\n" for t in test.targets[:7]), encoding="utf-8")
    args = ["evaluate", "--checkpoint", str(word_model), "--src", str(tmp_path / "x.npy"), "--quiet"]
    status, out, err = cli(capsys, *args, "--ref", str(tmp_path / "ref.txt"), "-o", str(tmp_path / "hyp.txt"))
    assert status == 0, err
    assert out.startswith("BLEU = ") and "chrF2" in out and "(7 inputs)" in out.splitlines()[-1]
    assert len((tmp_path / "hyp.txt").read_text(encoding="utf-8").splitlines()) == 7
    (tmp_path / "short.txt").write_text("one\n", encoding="utf-8")
    status, _, err = cli(capsys, *args, "--ref", str(tmp_path / "short.txt"))
    assert status == 2 and "has 7 inputs but" in err
    status, _, err = cli(capsys, *args, "--ref", str(tmp_path / "ref.txt"), "--window", "4")
    assert status == 2 and "--window does not apply" in err


def test_denoising_autoencoder_resumes_exactly(tmp_path):
    """The noise depends on (seed, epoch, batch): a run resumed half-way ends where one straight run does."""
    extra = ["autoencoder.image_noise=gaussian", "model.d_model=16", "train.valid_every=4", "train.precision=fp32"]
    Trainer(tiny_ae(tmp_path / "a", *extra, "train.max_steps=4")).fit()
    resumed = Trainer(tiny_ae(tmp_path / "a", *extra, "train.max_steps=8"), resume=True).fit()
    straight = Trainer(tiny_ae(tmp_path / "b", *extra, "train.max_steps=8")).fit()
    assert resumed.steps == straight.steps == 8
    assert resumed.best_score == straight.best_score
