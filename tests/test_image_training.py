"""Images as first-class inputs: config validation, ``seq2seq train`` on generated digit images and
on .npy splits, checkpoint -> Translator / ``seq2seq translate``, staged training through
per-image classes, and bad inputs named in errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from seq2seq.cli import main  # noqa: E402
from seq2seq.config import load_config  # noqa: E402
from seq2seq.data.image_sources import digits_split, place_value_targets  # noqa: E402
from seq2seq.errors import ConfigError, DataError  # noqa: E402
from seq2seq.infer.translator import Translator  # noqa: E402
from seq2seq.train.trainer import Trainer  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digit_images" / "config.yaml"


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
        (["task=autoencoder"], ["task=translation"]),
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
