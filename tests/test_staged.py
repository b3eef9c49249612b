"""Staged training: context targets, the encoder and decoder stages, freezing, joining checkpoints.

A tiny digits-to-words task (a few hundred numbers, the recipe's own data code) checks the
mechanics, not the accuracy: each run takes a few seconds.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seq2seq.checkpoint import join_checkpoints, load_checkpoint, load_part
from seq2seq.cli import main
from seq2seq.config import load_config
from seq2seq.data import load_context_targets, read_lines
from seq2seq.errors import CheckpointError, ConfigError, DataError
from seq2seq.infer.translator import Translator
from seq2seq.models.context import ContextTarget
from seq2seq.train.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "digits_to_words"))
from number_data import place_value_vectors, sample_numbers, spell  # noqa: E402

ENCODER_KEYS = ("encoder.", "context_head.")
DECODER_KEYS = ("decoder.", "context_input.")


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """train/valid TSVs of numbers -> English words, with place-value context targets (.npy)."""
    directory = tmp_path_factory.mktemp("digits")
    numbers = sample_numbers(460, seed=7)  # the staged study's data: integers of 1 to 9 digits
    for split, chunk in (("train", numbers[:400]), ("valid", numbers[400:])):
        (directory / f"{split}.tsv").write_text("".join(f"{n}\t{spell(n, 'en')}\n" for n in chunk), encoding="utf-8")
        numerals = [line.split("\t")[0] for line in read_lines(directory / f"{split}.tsv")]
        np.save(directory / f"{split}.context.npy", place_value_vectors(numerals))
    return directory


def config(digits: Path, out: Path, *overrides: str):
    base = [
        "data.format=tsv",
        f"data.path={digits}",
        "data.train=train.tsv",
        "data.valid=valid.tsv",
        "data.context_targets=train.context.npy",
        "data.valid_context_targets=valid.context.npy",
        "tokenizer.joint=false",
        "tokenizer.model_type=word",
        "tokenizer.vocab_size=60",
        "tokenizer.src_model_type=char",
        "tokenizer.src_vocab_size=16",
        "model.encoder=gru",
        "model.decoder=gru",
        "model.attention=none",
        "model.d_model=32",
        "model.enc_layers=1",
        "model.dec_layers=1",
        "model.dropout=0.1",
        "model.share_embeddings=false",
        "model.context_target_dim=99",
        "model.context_target_blocks=9",
        f"train.output_dir={out}",
        "train.precision=fp32",
        "train.max_tokens=1024",
        "train.lr=3e-3",
        "train.warmup_steps=10",
        "train.max_steps=30",
        "train.valid_every=30",
        "train.valid_bleu=false",
        "train.early_stop_metric=loss",
        "train.progress=false",
        "train.keep_last=0",
        "train.log_every=10",
        "search.beam=1",
        "search.max_len_a=6",
    ]
    return load_config(None, [*base, *overrides])


def weights(run: Path, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    state = load_file(str(run / "last" / "model.safetensors"))
    return {k: v for k, v in state.items() if k.startswith(keys)}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def stages(digits: Path, tmp_path_factory) -> dict[str, Path]:
    """The two stages trained separately, and an untouched (step 0) model of each."""
    root = tmp_path_factory.mktemp("stages")
    runs = {}
    for stage in ("encoder", "decoder"):
        runs[f"{stage}_init"] = root / f"{stage}_init"
        Trainer(
            config(digits, runs[f"{stage}_init"], f"train.stage={stage}", "train.max_steps=1", "train.lr=1e-12")
        ).fit()
        runs[stage] = root / stage
        Trainer(config(digits, runs[stage], f"train.stage={stage}")).fit()
    return runs


def test_place_value_vectors_are_one_hot_blocks():
    v = place_value_vectors(["4021", "0"]).reshape(2, 9, 11)
    assert v.sum(axis=2).tolist() == [[1.0] * 9] * 2
    assert v[0].argmax(axis=1).tolist() == [1, 2, 0, 4, 10, 10, 10, 10, 10]
    assert v[1].argmax(axis=1).tolist() == [0] + [10] * 8


def test_context_target_losses():
    ce = ContextTarget(6, blocks=2, loss="ce")
    raw = torch.tensor([[5.0, 0, 0, 0, 5, 0], [0, 0, 5, 5, 0, 0]])
    target = torch.tensor([[1.0, 0, 0, 0, 1, 0], [1.0, 0, 0, 1, 0, 0]])
    loss, n, correct = ce.loss_sum(raw, target)
    assert n == 4 and correct.tolist() == [True, False]
    assert float(loss) > 5.0  # one block confidently wrong
    assert torch.allclose(ce.activate(raw).view(2, 2, 3).sum(-1), torch.ones(2, 2))
    mse = ContextTarget(3, loss="mse")
    loss, n, correct = mse.loss_sum(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 2.0, 4.0]]))
    assert float(loss) == 1.0 and n == 3 and correct.tolist() == [False]
    with pytest.raises(ValueError):
        ContextTarget(10, blocks=3)


def test_context_targets_file_errors(tmp_path):
    text = tmp_path / "targets.txt"
    text.write_text("1 0 0\n0 1 0\n", encoding="utf-8")
    assert load_context_targets(text, rows=2, dim=3).tolist() == [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(DataError, match=r"targets.txt: 2 vectors .* 3 lines"):
        load_context_targets(text, rows=3, dim=3)
    text.write_text("1 0 0\n0 1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"targets.txt, line 2: 2 numbers, expected 3"):
        load_context_targets(text, rows=2, dim=3)
    text.write_text("1 0 0\n0 x 1\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        load_context_targets(text, rows=2, dim=3)
    array = tmp_path / "targets.npy"
    np.save(array, np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(DataError, match="vector 1 holds NaN"):
        load_context_targets(array, rows=1, dim=3)


def test_config_checks_for_stages(digits, tmp_path):
    with pytest.raises(ConfigError, match="needs model.attention=none"):
        config(digits, tmp_path, "model.attention=luong")
    with pytest.raises(ConfigError, match="needs a context target"):
        config(digits, tmp_path, "train.stage=encoder", "model.context_target_dim=0")
    with pytest.raises(ConfigError, match="early_stop_metric=loss"):
        config(digits, tmp_path, "train.stage=decoder", "train.early_stop_metric=exact_match")
    with pytest.raises(ConfigError, match="multiple of"):
        config(digits, tmp_path, "model.context_target_blocks=4")


def test_encoder_stage_trains_only_the_encoder(stages):
    before, after = stages["encoder_init"], stages["encoder"]
    assert not same(weights(before, ENCODER_KEYS), weights(after, ENCODER_KEYS))
    # The decoder half never ran: bit-identical to its initialisation (same seed).
    assert same(weights(before, DECODER_KEYS), weights(after, DECODER_KEYS))
    log = (after / "train_log.jsonl").read_text()
    assert "valid_context_accuracy" in log


def test_decoder_stage_trains_only_the_decoder(stages):
    before, after = stages["decoder_init"], stages["decoder"]
    assert not same(weights(before, DECODER_KEYS), weights(after, DECODER_KEYS))
    assert same(weights(before, ENCODER_KEYS), weights(after, ENCODER_KEYS))


def test_join_takes_each_half_from_its_checkpoint(stages, tmp_path):
    joined = join_checkpoints(stages["encoder"] / "last", stages["decoder"] / "last", tmp_path / "joined")
    state = load_file(str(joined / "model.safetensors"))
    enc = weights(stages["encoder"], ENCODER_KEYS)
    dec = weights(stages["decoder"], DECODER_KEYS)
    assert all(torch.equal(state[k], v) for k, v in {**enc, **dec}.items())
    hyps = Translator.from_checkpoint(joined).translate(["12", "4021", ""])
    assert len(hyps) == 3 and hyps[2] == ""
    # The CLI does the same.
    assert (
        main(
            [
                "join",
                "--encoder",
                str(stages["encoder"] / "last"),
                "--decoder",
                str(stages["decoder"] / "last"),
                "--output",
                str(tmp_path / "joined2"),
            ]
        )
        == 0
    )
    assert (tmp_path / "joined2" / "manifest.json").is_file()


def test_join_refuses_different_architectures(stages, digits, tmp_path):
    other = tmp_path / "other"
    Trainer(config(digits, other, "train.stage=decoder", "model.d_model=48", "train.max_steps=1")).fit()
    with pytest.raises(CheckpointError, match="d_model"):
        join_checkpoints(stages["encoder"] / "last", other / "last", tmp_path / "joined")
    model, *_ = load_checkpoint(stages["encoder"] / "last")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_part(model, other / "last", "decoder")


def test_fine_tuning_starts_from_both_stages(stages, digits, tmp_path):
    run = tmp_path / "finetune"
    cfg = config(
        digits,
        run,
        f"train.init_encoder={stages['encoder'] / 'last'}",
        f"train.init_decoder={stages['decoder'] / 'last'}",
        "train.max_steps=0",
        "train.max_epochs=0",
    )
    Trainer(cfg).fit()  # no update: the saved model is exactly the join
    start = {**weights(run, ENCODER_KEYS), **weights(run, DECODER_KEYS)}
    assert same(start, {**weights(stages["encoder"], ENCODER_KEYS), **weights(stages["decoder"], DECODER_KEYS)})
    tuned = tmp_path / "tuned"
    Trainer(
        config(
            digits,
            tuned,
            f"train.init_encoder={stages['encoder'] / 'last'}",
            f"train.init_decoder={stages['decoder'] / 'last'}",
            "train.max_steps=5",
        )
    ).fit()
    assert not same(weights(tuned, ENCODER_KEYS), weights(stages["encoder"], ENCODER_KEYS))


def test_freeze_encoder_keeps_it_bit_identical_with_no_gradient(digits, tmp_path):
    init = tmp_path / "init"
    Trainer(config(digits, init, "train.max_steps=1", "train.lr=1e-12")).fit()
    run = tmp_path / "frozen"
    trainer = Trainer(config(digits, run, f"train.init_encoder={init / 'last'}", "train.freeze=[encoder]"))
    trainer.fit()
    assert same(weights(run, ENCODER_KEYS), weights(init, ENCODER_KEYS))
    assert not same(weights(run, DECODER_KEYS), weights(init, DECODER_KEYS))
    # Forward only: the frozen half gets no gradient at all, and it runs without dropout.
    model, cfg, tokenizers, _ = load_checkpoint(run / "last")
    from seq2seq.data import collate, encode_pairs, load_parallel
    from seq2seq.train.freeze import freeze_parts, train_mode
    from seq2seq.train.objectives import choose_objective

    freeze_parts(model, ["encoder"])
    train_mode(model)
    assert not model.encoder.training and model.decoder.training
    examples, _ = encode_pairs(load_parallel(cfg.data, cfg.data.train), tokenizers, 16, 64)
    batch = collate(examples[:8])
    choose_objective(cfg).loss(model, batch, 0.0).loss.backward()
    assert all(p.grad is None for m in model.part("encoder") for p in m.parameters())
    assert any(p.grad is not None for p in model.decoder.parameters())
    with pytest.raises(ConfigError, match="no part named 'encodr'"):
        freeze_parts(model, ["encodr"])


def test_init_refuses_a_different_sentencepiece_model(stages, digits, tmp_path):
    encoder = stages["encoder"] / "last"
    with pytest.raises(ConfigError, match="separate source and target"):
        Trainer(
            config(
                digits,
                tmp_path / "x",
                f"train.init_encoder={encoder}",
                "tokenizer.joint=true",
                "tokenizer.src_model_type=",
                "tokenizer.src_vocab_size=0",
            )
        ).fit()
    # The word-level target model given as the source model: ids would mean other tokens.
    words = encoder / "tgt.spm.model"
    with pytest.raises(ConfigError, match="differs from tokenizer.model"):
        Trainer(
            config(
                digits,
                tmp_path / "y",
                f"train.init_encoder={encoder}",
                f"tokenizer.model={words}",
                f"tokenizer.tgt_model={words}",
            )
        ).fit()
