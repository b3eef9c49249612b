"""seq2seq plot: learning curves as a PNG of the expected size."""

from __future__ import annotations

import json

import pytest

from seq2seq.cli import main

pytest.importorskip("matplotlib")


def write_log(path, bleu_offset: float) -> None:
    records = [{"event": "start", "step": 0}]
    for step in range(10, 110, 10):
        records.append({"event": "train", "step": step, "loss": 5.0 / step**0.3, "lr": 1e-3 * min(1, step / 50)})
        if step % 50 == 0:
            records.append(
                {"event": "valid", "step": step, "valid_loss": 4.0 / step**0.2, "valid_bleu": bleu_offset + step / 10}
            )
    path.mkdir()
    text = "".join(json.dumps(r) + "\n" for r in records) + '{"event": "train", "st'  # a line cut short by a crash
    (path / "train_log.jsonl").write_text(text)


def test_plot_writes_a_png_of_the_expected_size(tmp_path, capsys):
    import matplotlib.pyplot as plt

    write_log(tmp_path / "run_a", 10.0)
    write_log(tmp_path / "run_b", 12.0)
    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path / "run_a"), str(tmp_path / "run_b" / "train_log.jsonl"), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.imread(out).shape[:2] == (700, 1000)  # 10 x 7 inches at 100 dpi
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_plot_of_a_directory_without_a_log_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty"), "-o", str(tmp_path / "x.png")]) == 2
    assert "no training log here" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("decoder", ["gru", "transformer"])
def test_translate_plot_attention_writes_one_heat_map_per_line(tmp_path, capsys, decoder):
    import random

    import matplotlib.pyplot as plt
    import numpy as np

    from seq2seq.checkpoint import load_checkpoint
    from seq2seq.config import load_config
    from seq2seq.infer.attention_maps import attention_weights
    from seq2seq.train.trainer import Trainer

    rng = random.Random(0)
    rows = [[rng.choice("abcdefgh") for _ in range(rng.randint(2, 5))] for _ in range(100)]
    (tmp_path / "pairs.tsv").write_text("".join(f"{' '.join(w)}\t{' '.join(reversed(w))}\n" for w in rows))
    attention = "luong" if decoder == "gru" else "multihead"
    Trainer(
        load_config(
            None,
            [
                "data.format=tsv",
                f"data.path={tmp_path}",
                "data.train=pairs.tsv",
                "data.valid=",
                "tokenizer.model_type=word",
                "tokenizer.vocab_size=14",
                f"model.encoder={decoder}",
                f"model.decoder={decoder}",
                f"model.attention={attention}",
                "model.d_model=16",
                "model.heads=2",
                "model.ffn_dim=32",
                "train.max_steps=3",
                "train.progress=false",
                "train.threads=1",
                f"train.output_dir={tmp_path / 'run'}",
            ],
        )
    ).fit()
    ckpt = tmp_path / "run" / "last"
    model, *_ = load_checkpoint(ckpt)
    maps = attention_weights(model, [[4, 5, 6], [7, 8]], [[5, 6], [9, 10, 11]])
    assert [m.shape for m in maps] == [(3, 3), (4, 2)]
    assert all(np.allclose(m.sum(axis=1), 1.0, atol=1e-5) for m in maps)  # each output row is a distribution

    (tmp_path / "in.txt").write_text("a b c\n\nd e f g h\n")
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                str(ckpt),
                "-i",
                str(tmp_path / "in.txt"),
                "-o",
                str(tmp_path / "out.txt"),
                "--quiet",
                "--plot-attention",
                str(tmp_path / "maps"),
            ]
        )
        == 0
    )
    assert len((tmp_path / "out.txt").read_text().splitlines()) == 3
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["1.png", "3.png"]  # the empty line has none
    image = plt.imread(tmp_path / "maps" / "3.png")
    assert image.shape[1] >= 400 and image.shape[0] >= 300  # at least the minimum 4 x 3 inches at 100 dpi


def test_attention_maps_need_a_model_with_attention():
    from seq2seq.config import load_config
    from seq2seq.errors import Seq2SeqError
    from seq2seq.infer.attention_maps import attention_weights
    from seq2seq.models import build_model

    cfg = load_config(None, ["model.encoder=gru", "model.decoder=gru", "model.attention=none", "model.d_model=8"])
    with pytest.raises(Seq2SeqError, match="no attention"):
        attention_weights(build_model(cfg.model, 12, 12), [[4, 5]], [[6]])


def test_tensorboard_log_beside_the_jsonl_log(tmp_path):
    pytest.importorskip("tensorboard")
    import random

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from seq2seq.config import load_config
    from seq2seq.train.trainer import Trainer

    rng = random.Random(0)
    rows = [[rng.choice("abcdefgh") for _ in range(rng.randint(2, 5))] for _ in range(80)]
    (tmp_path / "pairs.tsv").write_text("".join(f"{' '.join(w)}\t{' '.join(reversed(w))}\n" for w in rows))
    Trainer(
        load_config(
            None,
            [
                "data.format=tsv",
                f"data.path={tmp_path}",
                "data.train=pairs.tsv",
                "data.valid=pairs.tsv",
                "tokenizer.model_type=word",
                "tokenizer.vocab_size=14",
                "model.encoder=gru",
                "model.decoder=gru",
                "model.d_model=16",
                "train.max_steps=4",
                "train.log_every=1",
                "train.valid_every=2",
                "train.tensorboard=true",
                "train.progress=false",
                "train.threads=1",
                f"train.output_dir={tmp_path / 'run'}",
            ],
        )
    ).fit()
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/tokens_per_s", "valid/loss", "valid/bleu"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("valid/bleu")] == [2, 4]
