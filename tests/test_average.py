"""seq2seq average: the mean of several checkpoints' weights."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seq2seq.cli import main
from seq2seq.config import load_config
from seq2seq.train.trainer import Trainer

LETTERS = "a b c d e f g h".split()


def train_run(tmp_path: Path, name: str, *extra: str) -> Path:
    rng = random.Random(0)
    rows = [[rng.choice(LETTERS) for _ in range(rng.randint(2, 5))] for _ in range(120)]
    (tmp_path / "pairs.tsv").write_text("".join(f"{' '.join(w)}\t{' '.join(reversed(w))}\n" for w in rows))
    out = tmp_path / name
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
                "train.max_tokens=64",
                "train.max_steps=8",
                "train.valid_every=2",
                "train.valid_bleu=false",
                "train.early_stop_metric=loss",
                "train.keep_last=3",
                "train.progress=false",
                "train.precision=fp32",
                "train.threads=1",
                f"train.output_dir={out}",
                *extra,
            ],
        )
    ).fit()
    return out


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def test_average_of_the_last_checkpoints_is_the_mean_of_their_weights(tmp_path, capsys):
    run = train_run(tmp_path, "run")
    assert main(["average", "--run", str(run), "--last", "3", "-o", str(tmp_path / "avg")]) == 0
    assert "averaged 3 checkpoints (step-4, step-6, step-8)" in capsys.readouterr().err
    parts = [weights(run / f"step-{n}") for n in (4, 6, 8)]
    averaged = weights(tmp_path / "avg")
    assert set(averaged) == set(parts[0])
    for name, tensor in averaged.items():
        expected = sum(p[name].double() for p in parts) / 3
        assert torch.allclose(tensor.double(), expected, atol=1e-6), name
    assert not torch.equal(averaged[name], parts[-1][name])  # it really is a new model
    (tmp_path / "in.txt").write_text("a b c\n\nd e\n")
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                str(tmp_path / "avg"),
                "-i",
                str(tmp_path / "in.txt"),
                "-o",
                str(tmp_path / "out.txt"),
                "--quiet",
            ]
        )
        == 0
    )
    assert len((tmp_path / "out.txt").read_text().splitlines()) == 3
    # explicit directories give the same result
    assert main(["average", *(str(run / f"step-{n}") for n in (4, 6, 8)), "-o", str(tmp_path / "avg2")]) == 0
    assert all(torch.equal(averaged[k], v) for k, v in weights(tmp_path / "avg2").items())


def test_average_refuses_what_cannot_be_averaged(tmp_path, capsys):
    run = train_run(tmp_path, "run")
    other = train_run(tmp_path, "wider", "model.d_model=24")

    def error(argv: list[str]) -> str:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("seq2seq: error:") and "Traceback" not in err
        return err

    assert "fewer than the 9 asked for" in error(
        ["average", "--run", str(run), "--last", "9", "-o", str(tmp_path / "x")]
    )
    assert "model sections differ" in error(
        ["average", str(run / "step-8"), str(other / "step-8"), "-o", str(tmp_path / "x")]
    )
    assert "not both" in error(["average", str(run / "step-8"), "--run", str(run), "-o", str(tmp_path / "x")])
    assert "is one of the checkpoints" in error(
        ["average", str(run / "step-6"), str(run / "step-8"), "-o", str(run / "step-8")]
    )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("count", [0, -1])
def test_average_needs_at_least_one(tmp_path, capsys, count):
    run = train_run(tmp_path, "run")
    assert main(["average", "--run", str(run), "--last", str(count), "-o", str(tmp_path / "x")]) == 2
    assert "at least 1" in capsys.readouterr().err
