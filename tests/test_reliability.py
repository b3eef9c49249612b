"""Issue 5: checkpoints that survive crashes, exact resume, safe loading, numerical faults.

The kill-and-resume tests run real training subprocesses and kill them with SIGKILL at
random updates and inside a checkpoint write; the resumed run must end with the same bytes
as an uninterrupted one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import seq2seq.checkpoint as checkpoint
from seq2seq.checkpoint import (
    copy_checkpoint,
    load_checkpoint,
    load_trainer_state,
    save_checkpoint,
    verify_checkpoint,
)
from seq2seq.cli import main
from seq2seq.config import load_config
from seq2seq.data.tokenizer import SpmTokenizer, TokenizerPair
from seq2seq.errors import CheckpointError, Seq2SeqError
from seq2seq.models import build_model
from seq2seq.train.objectives import Translation
from seq2seq.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
LETTERS = "a b c d e f g h i j k l".split()


# ------------------------------------------------------------------ helpers
@pytest.fixture
def tiny_checkpoint_parts():
    cfg = load_config(
        None, ["model.d_model=32", "model.ffn_dim=64", "model.enc_layers=1", "model.dec_layers=1", "model.heads=2"]
    )
    texts = ["ein hund läuft", "a dog runs", "zwei katzen", "two cats"] * 20
    tok = TokenizerPair(SpmTokenizer.train(texts, vocab_size=40, model_type="word"))
    model = build_model(cfg.model, tok.src.vocab_size, tok.tgt.vocab_size)
    return cfg, tok, model


def rewrite(ckpt: Path, name: str, data: bytes) -> None:
    """Replace a checkpoint file *and* its manifest entry: what a deliberate attacker does."""
    (ckpt / name).write_bytes(data)
    manifest = json.loads((ckpt / "manifest.json").read_text())
    manifest[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ckpt / "manifest.json").write_text(json.dumps(manifest))


def make_data(directory: Path, n_train: int = 160, n_valid: int = 12, seed: int = 0) -> None:
    rng = random.Random(seed)
    for name, n in (("train", n_train), ("valid", n_valid)):
        rows = [[rng.choice(LETTERS) for _ in range(rng.randint(2, 6))] for _ in range(n)]
        (directory / f"{name}.tsv").write_text("".join(f"{' '.join(w)}\t{' '.join(reversed(w))}\n" for w in rows))


def run_config(directory: Path, output: str, **train: object) -> Path:
    """A tiny Transformer run with dropout, label smoothing and gradient accumulation, so that
    every RNG stream and the accumulation boundary matter for exact resume."""
    settings = {
        "output_dir": str(directory / output),
        "precision": "fp32",
        "threads": 1,
        "max_tokens": 48,
        "accumulate": 2,
        "lr": 3.0e-3,
        "warmup_steps": 10,
        "label_smoothing": 0.1,
        "max_steps": 36,
        "valid_every": 12,
        "valid_bleu": True,
        "early_stop_metric": "bleu",
        "patience": 0,
        "log_every": 1,
        "save_every": 1,
        "keep_last": 2,
        "progress": False,
        "seed": 7,
        **train,
    }
    path = directory / f"{output}.yaml"
    path.write_text(
        json.dumps(
            {
                "data": {"format": "tsv", "path": str(directory), "train": "train.tsv", "valid": "valid.tsv"},
                "tokenizer": {"model_type": "word", "vocab_size": 20, "joint": True},
                "model": {
                    "encoder": "transformer",
                    "decoder": "transformer",
                    "d_model": 32,
                    "ffn_dim": 64,
                    "enc_layers": 1,
                    "dec_layers": 1,
                    "heads": 2,
                    "dropout": 0.2,
                },
                "train": settings,
            }
        )
    )
    return path


# A training subprocess that can be told to stop (and wait to be killed) inside a checkpoint
# write: HOOK=weights:N sleeps after the N-th save of last/ wrote its weights to last.tmp;
# HOOK=swap:N sleeps between the two renames of the N-th save (only last.old exists then).
RUNNER = r"""
import os, sys, time
from pathlib import Path
import seq2seq.checkpoint as c
from seq2seq.cli import main

phase, _, nth = os.environ.get("HOOK", ":").partition(":")
calls = [0]

def pause(marker):
    calls[0] += 1
    if calls[0] == int(nth):
        Path(os.environ["MARKER"]).write_text(marker)
        time.sleep(600)

if phase == "weights":
    real_save = c.save_weights
    def save_model(model, path):
        real_save(model, path)
        if "last.tmp" in path:
            pause("weights")
    c.save_weights = save_model
elif phase == "swap":
    real_replace = os.replace
    def replace(a, b):
        real_replace(a, b)
        if str(b).endswith("last.old"):
            pause("swap")
    os.replace = replace
sys.exit(main(sys.argv[1:]))
"""


def start(config: Path, *flags: str, hook: str = "", marker: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOOK": hook, "MARKER": str(marker or ""), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, "train", str(config), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def logged_step(run: Path) -> int:
    log = run / "train_log.jsonl"
    if not log.is_file():
        return 0
    steps = [json.loads(line).get("step", 0) for line in log.read_text().splitlines() if line.endswith("}")]
    return max(steps, default=0)


def saved_step(run: Path) -> int:
    """The update of ``run/last``, or -1 while there is none (or it is being swapped in)."""
    try:
        return load_trainer_state(run / "last")["step"]
    except Exception:  # noqa: BLE001 (missing or half-renamed: not saved yet)
        return -1


def wait_for(proc: subprocess.Popen, condition, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"training ended before the kill point:\n{proc.stderr.read()}")
        assert time.time() < deadline, "kill point never reached"
        time.sleep(0.05)


def finish(proc: subprocess.Popen, expect: int = 0) -> str:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == expect, err
    assert "Traceback" not in err
    return err


def fingerprint(ckpt: Path) -> dict[str, str]:
    """sha256 of the parts that must be identical: weights and optimizer/RNG tensors."""
    manifest = json.loads((ckpt / "manifest.json").read_text())
    return {name: manifest[name]["sha256"] for name in ("model.safetensors", "trainer_state.safetensors")}


# ------------------------------------------------------- exact resume (slow)
@pytest.mark.slow
def test_killed_and_resumed_run_is_bit_identical(tmp_path):
    make_data(tmp_path)
    reference = run_config(tmp_path, "reference")
    finish(start(reference))
    ref_state = load_trainer_state(tmp_path / "reference" / "last")
    assert ref_state["step"] == 36

    config = run_config(tmp_path, "killed")
    run = tmp_path / "killed"
    marker = tmp_path / "marker"
    rng = random.Random(1234)
    kills = [
        ("weights", 5),
        ("swap", 9),
        ("random", rng.randint(14, 20)),
        ("sigint", rng.randint(22, 26)),
        ("random", rng.randint(28, 33)),
    ]
    resumed_from = []
    for i, (how, where) in enumerate(kills):
        flags = ("--resume",) if i else ()
        marker.unlink(missing_ok=True)
        if how in ("weights", "swap"):
            proc = start(config, *flags, hook=f"{how}:{where}", marker=marker)
            wait_for(proc, marker.exists)
        else:
            proc = start(config, *flags)
            # A loaded machine can deliver the previous Ctrl-C late, past this kill point: wait
            # for a save newer than the last resume too, so that every kill loses some progress.
            after = resumed_from[-1] if resumed_from else 0
            wait_for(proc, lambda: logged_step(run) >= where and saved_step(run) > after)  # noqa: B023 (used at once)
        if how == "sigint":  # Ctrl-C: finish the update, save last/, exit 130
            proc.send_signal(signal.SIGINT)
            err = finish(proc, expect=130)
            assert "interrupted at update" in err and "saved" in err
        else:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if how == "swap":  # killed between the renames: only last.old is complete
            assert not (run / "last").exists() and (run / "last.old").is_dir()
        resumed_from.append(load_trainer_state(run / "last")["step"])
    finish(start(config, "--resume"))

    assert resumed_from == sorted(resumed_from) and len(set(resumed_from)) == len(resumed_from)
    state = load_trainer_state(run / "last")
    assert state["step"] == ref_state["step"] and state["epoch"] == ref_state["epoch"]
    assert state["schedule"] == ref_state["schedule"]
    assert fingerprint(run / "last") == fingerprint(tmp_path / "reference" / "last")
    assert fingerprint_best(run / "best") == fingerprint_best(tmp_path / "reference" / "best")
    # keep_last: two step-N/ copies, no temporary leftovers
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["best", "last", "step-24", "step-36"]
    # the log was cut back at each resume: every update is logged exactly once
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["event"] == "train"]
    assert train_steps == list(range(1, 37))
    assert [r["step"] for r in records if r["event"] == "valid"] == [12, 24, 36]


def fingerprint_best(ckpt: Path) -> str:
    return json.loads((ckpt / "manifest.json").read_text())["model.safetensors"]["sha256"]


# ------------------------------------------------------ crash-safe writing
def test_checkpoint_round_trip(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    state = {
        "step": 7,
        "optimizer": {"state": {0: {"exp_avg": torch.ones(3)}}, "param_groups": [{"betas": (0.9, 0.98)}]},
        "best_loss": float("inf"),
        "best_score": None,
        "rng": torch.get_rng_state(),
    }
    save_checkpoint(tmp_path / "last", model, cfg, tok, state)
    loaded, cfg2, tok2, meta = load_checkpoint(tmp_path / "last")
    assert cfg2 == cfg and tok2.src.fingerprint == tok.src.fingerprint
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    back = load_trainer_state(tmp_path / "last")
    assert back["step"] == 7 and back["best_loss"] == float("inf") and back["best_score"] is None
    assert list(back["optimizer"]["state"]) == [0]  # integer keys stay integers
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.98)
    assert torch.equal(back["rng"], state["rng"])
    # overwrite: the old one is replaced atomically, no leftovers
    save_checkpoint(tmp_path / "last", model, cfg, tok, {"step": 8})
    assert load_trainer_state(tmp_path / "last")["step"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    assert not any(p.suffix == ".pt" for p in (tmp_path / "last").iterdir())  # no pickle written
    umask = os.umask(0o022)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "last").iterdir()} == {0o666 & ~umask}
    # identical weights, identical bytes (tied embeddings included): the weights hash names a model
    assert cfg.model.share_embeddings
    hashes = {fingerprint_best(save_checkpoint(tmp_path / f"copy{i}", model, cfg, tok)) for i in range(4)}
    assert len(hashes) == 1


def test_crash_between_renames_falls_back_to_old_and_recovers(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    save_checkpoint(tmp_path / "last", model, cfg, tok, {"step": 1})
    os.replace(tmp_path / "last", tmp_path / "last.old")  # what a crash mid-swap leaves
    (tmp_path / "last.tmp").mkdir()  # and a half-written next one
    (tmp_path / "last.tmp" / "model.safetensors").write_bytes(b"half")
    assert load_trainer_state(tmp_path / "last")["step"] == 1
    # the next save first moves last.old back: a crash during it can never lose both
    real = checkpoint.save_weights

    def failing(model, path):
        assert (tmp_path / "last").is_dir() and not (tmp_path / "last.old").exists()
        raise OSError(errno.ENOSPC, "No space left on device")

    checkpoint.save_weights = failing
    try:
        with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint"):
            save_checkpoint(tmp_path / "last", model, cfg, tok, {"step": 2})
    finally:
        checkpoint.save_weights = real
    assert load_trainer_state(tmp_path / "last")["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_copy_checkpoint_is_complete_and_independent(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    save_checkpoint(tmp_path / "last", model, cfg, tok, {"step": 3})
    copy_checkpoint(tmp_path / "last", tmp_path / "step-3")
    save_checkpoint(tmp_path / "last", model, cfg, tok, {"step": 4})  # replaces files, never edits them
    assert load_trainer_state(tmp_path / "step-3")["step"] == 3
    verify_checkpoint(tmp_path / "step-3", need_trainer_state=True)
    # replacing a copy swaps it like a save: a crash between the renames leaves step-3.old,
    # which the next copy (or a resumed run) moves back first
    os.replace(tmp_path / "step-3", tmp_path / "step-3.old")
    copy_checkpoint(tmp_path / "last", tmp_path / "step-3")
    assert load_trainer_state(tmp_path / "step-3")["step"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "step-3"]


def test_truncated_corrupted_and_missing_files_are_named(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    ckpt = save_checkpoint(tmp_path / "best", model, cfg, tok)
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors is truncated"):
        load_checkpoint(ckpt)
    flipped = bytearray(data)
    flipped[-5] ^= 0x01  # one bit in a weight: same size
    weights.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted.*sha256"):
        load_checkpoint(ckpt)
    weights.write_bytes(data)
    load_checkpoint(ckpt)
    (ckpt / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="manifest.json is corrupted"):
        load_checkpoint(ckpt)
    (ckpt / "config.json").unlink()
    with pytest.raises(CheckpointError, match="missing config.json"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nowhere")


def test_incompatible_format_is_refused(tmp_path, tiny_checkpoint_parts, capsys):
    cfg, tok, model = tiny_checkpoint_parts
    ckpt = save_checkpoint(tmp_path / "best", model, cfg, tok)
    meta = json.loads((ckpt / "config.json").read_text())
    meta["format"] = 999
    rewrite(ckpt, "config.json", json.dumps(meta).encode())
    with pytest.raises(CheckpointError, match="format 999"):
        load_checkpoint(ckpt)
    (tmp_path / "in.txt").write_text("ein hund\n")
    assert main(["translate", "--checkpoint", str(ckpt), "--input", str(tmp_path / "in.txt")]) == 2
    assert "format 999" in capsys.readouterr().err


# ------------------------------------------------------------ safe loading
class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {PWNED}",))


PWNED = Path("/tmp/seq2seq-test-pwned")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    "target", ["trainer_state.pt", "trainer_state.safetensors", "trainer_state.json", "model.safetensors"]
)
def test_malicious_pickle_is_refused_and_never_executed(tmp_path, tiny_checkpoint_parts, target):
    cfg, tok, model = tiny_checkpoint_parts
    PWNED.unlink(missing_ok=True)
    ckpt = save_checkpoint(tmp_path / "last", model, cfg, tok, {"step": 1})
    payload = pickle.dumps({"step": _Exploit()})
    if target == "trainer_state.pt":  # the pickle format of seq2seq 0.1, read with weights_only=True
        for name in ("trainer_state.json", "trainer_state.safetensors"):
            (ckpt / name).unlink()
            manifest = json.loads((ckpt / "manifest.json").read_text())
            del manifest[name]
            (ckpt / "manifest.json").write_text(json.dumps(manifest))
    rewrite(ckpt, target, payload)  # the manifest is forged too: only the loader stands in the way
    with pytest.raises(CheckpointError, match="refused|could not be read"):
        if target == "model.safetensors":
            load_checkpoint(ckpt)
        else:
            load_trainer_state(ckpt)
    assert not PWNED.exists()


def test_malicious_trainer_state_refused_by_resume(tmp_path, capsys):
    PWNED.unlink(missing_ok=True)
    make_data(tmp_path, n_train=40, n_valid=4)
    config = run_config(tmp_path, "run", max_steps=2, valid_every=0, save_every=0, max_epochs=1)
    assert main(["train", str(config)]) == 0
    last = tmp_path / "run" / "last"
    rewrite(last, "trainer_state.safetensors", pickle.dumps(_Exploit()))
    capsys.readouterr()
    assert main(["train", str(config), "--resume", "--set", "train.max_epochs=2"]) == 2
    err = capsys.readouterr().err
    assert "trainer_state" in err and "Traceback" not in err
    assert not PWNED.exists()


# ------------------------------------------------------- disk full, errors
def test_disk_full_while_saving_stops_with_previous_checkpoint_intact(tmp_path, monkeypatch, capsys):
    make_data(tmp_path, n_train=60, n_valid=4)
    config = run_config(tmp_path, "run", max_steps=10, valid_every=100, save_every=2, keep_last=0)
    real, calls = checkpoint.save_weights, []

    def save_model(model, path):
        calls.append(path)
        if len(calls) == 4:  # the 4th save of last/: update 8
            raise OSError(errno.ENOSPC, "No space left on device")
        real(model, path)

    monkeypatch.setattr(checkpoint, "save_weights", save_model)
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "No space left on device" in err and "previous checkpoint" in err and "--resume" in err
    last = tmp_path / "run" / "last"
    assert load_trainer_state(last)["step"] == 6
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.is_dir()) == ["last"]
    monkeypatch.setattr(checkpoint, "save_weights", real)
    assert main(["train", str(config), "--resume"]) == 0  # space freed: continue
    assert load_trainer_state(last)["step"] == 10


def test_file_size_limit_is_a_clear_error_in_a_real_process(tmp_path):
    """A real OS write error (EFBIG from RLIMIT_FSIZE, as a full disk gives ENOSPC)."""
    make_data(tmp_path, n_train=40, n_valid=4)
    config = run_config(tmp_path, "run", max_steps=2, valid_every=0, save_every=0, max_epochs=1)
    config.write_text(config.read_text().replace('"d_model": 32', '"d_model": 128'))

    def limit() -> None:  # SentencePiece's model is ~240 kB, the weights ~900 kB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, 500_000))

    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq", "train", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=limit,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith("seq2seq: error: cannot write checkpoint") and "no checkpoint was written" in last_line
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "run").iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_output_directory_is_a_clear_error(tmp_path, capsys):
    make_data(tmp_path, n_train=40, n_valid=4)
    config = run_config(tmp_path, "run", max_steps=4, valid_every=0, save_every=2, max_epochs=1)
    assert main(["train", str(config), "--set", "train.max_steps=2"]) == 0
    (tmp_path / "run").chmod(0o500)
    try:
        assert main(["train", str(config), "--resume"]) == 2
    finally:
        (tmp_path / "run").chmod(0o700)
    assert "Permission denied" in capsys.readouterr().err
    assert load_trainer_state(tmp_path / "run" / "last")["step"] == 2


# -------------------------------------------------------- numerical faults
class FaultyTranslation(Translation):
    """Makes the loss of the listed updates NaN, or (``bad_grad``) their gradient inf."""

    def __init__(self, cfg, bad_loss=(), bad_grad=()):
        super().__init__(cfg)
        self.bad_loss, self.bad_grad = set(bad_loss), set(bad_grad)

    def loss(self, model, batch, label_smoothing, step=0):
        out = super().loss(model, batch, label_smoothing, step)
        if model.training and step + 1 in self.bad_loss:
            out.loss = out.loss * float("nan")
        if model.training and step + 1 in self.bad_grad:  # a finite loss whose gradient overflows
            out.loss.register_hook(lambda g: g * float("inf"))
        return out


def FaultyTrainer(cfg, bad_loss=(), bad_grad=(), resume=False):  # noqa: N802 (reads as the class it makes)
    return Trainer(cfg, resume, objective=FaultyTranslation(cfg, bad_loss, bad_grad))


def test_nan_loss_and_inf_gradient_skip_the_update_and_are_logged(tmp_path):
    make_data(tmp_path, n_train=60, n_valid=4)
    cfg = load_config(run_config(tmp_path, "run", max_steps=12, valid_every=0, accumulate=1, save_every=0))
    trainer = FaultyTrainer(cfg, bad_loss={3, 4}, bad_grad={8})
    trainer.fit()
    state = load_trainer_state(tmp_path / "run" / "last")
    assert state["skipped_updates"] == 3 and state["step"] == 12
    records = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    skipped = [(r["step"], r["reason"]) for r in records if r["event"] == "skipped"]
    assert skipped == [(3, "non-finite loss"), (4, "non-finite loss"), (8, "non-finite gradient")]
    model, *_ = load_checkpoint(tmp_path / "run" / "last")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_too_many_bad_updates_in_a_row_stop_with_last_good_checkpoint(tmp_path):
    make_data(tmp_path, n_train=60, n_valid=4)
    cfg = load_config(
        run_config(tmp_path, "run", max_steps=30, valid_every=0, accumulate=1, save_every=4, max_bad_updates=3)
    )
    trainer = FaultyTrainer(cfg, bad_loss=set(range(10, 31)))
    with pytest.raises(Seq2SeqError, match=r"diverged: 3 updates in a row had a non-finite loss.*update 12"):
        trainer.fit()
    model, *_ = load_checkpoint(tmp_path / "run" / "last")
    assert load_trainer_state(tmp_path / "run" / "last")["step"] == 8
    assert all(torch.isfinite(p).all() for p in model.parameters())


# -------------------------------------------- exact resume across the tasks
def task_overrides(tmp_path: Path, task: str, out: str) -> list[str]:
    """Every stochastic part of each task: input noise, word dropout, variational or binary
    sampling, dropout; validation (which must not disturb the RNG streams) every 5 updates."""
    rng = random.Random(3)
    rows = [[rng.choice(LETTERS) for _ in range(rng.randint(2, 6))] for _ in range(80)]
    (tmp_path / "mono.txt").write_text("".join(" ".join(w) + "\n" for w in rows))
    (tmp_path / "labelled.tsv").write_text("".join(f"{' '.join(w)}\t{'ab'[w[0] < 'f']}\n" for w in rows))
    common = [
        f"train.output_dir={tmp_path / out}",
        "train.precision=fp32",
        "train.threads=1",
        "train.max_tokens=40",
        "train.warmup_steps=5",
        "train.valid_every=5",
        "train.progress=false",
        "train.log_every=1",
        "train.keep_last=0",
        "train.seed=5",
        "tokenizer.model_type=word",
        "tokenizer.vocab_size=20",
        "model.encoder=gru",
        "model.decoder=gru",
        "model.d_model=24",
        "model.dropout=0.3",
        "data.format=text",
    ]
    if task == "classification":
        return [
            *common,
            "task=classification",
            "data.format=tsv",
            f"data.path={tmp_path}",
            "data.train=labelled.tsv",
            "data.valid=labelled.tsv",
            "model.classifier_hidden=16",
        ]
    ae = [
        *common,
        "task=autoencoder",
        f"data.path={tmp_path}",
        "data.train=mono.txt",
        "data.valid=mono.txt",
        "autoencoder.drop=0.2",
        "autoencoder.mask=0.2",
        "autoencoder.shuffle=0.3",
        "model.context_dim=16",
    ]
    if task == "variational":
        return [*ae, "model.bottleneck=variational", "autoencoder.word_dropout=0.3", "autoencoder.kl_anneal_steps=8"]
    return [*ae, "model.bottleneck=binary", "model.binary_noise=0.3"]


@pytest.mark.parametrize("task", ["variational", "binary", "classification"])
def test_stopped_and_resumed_run_is_bit_identical_for_every_task(tmp_path, task, caplog):
    Trainer(load_config(None, [*task_overrides(tmp_path, task, "ref"), "train.max_steps=16"])).fit()
    Trainer(load_config(None, [*task_overrides(tmp_path, task, "run"), "train.max_steps=7"])).fit()
    Trainer(load_config(None, [*task_overrides(tmp_path, task, "run"), "train.max_steps=16"]), resume=True).fit()
    assert fingerprint(tmp_path / "run" / "last") == fingerprint(tmp_path / "ref" / "last")
    assert "changed settings" not in caplog.text  # max_steps may change freely


def test_resume_with_changed_trajectory_settings_warns(tmp_path, caplog):
    Trainer(load_config(None, [*task_overrides(tmp_path, "binary", "run"), "train.max_steps=3"])).fit()
    (tmp_path / "run" / "step-99.tmp").mkdir()  # a copy cut short by a crash
    overrides = [
        *task_overrides(tmp_path, "binary", "run"),
        "train.max_steps=4",
        "train.lr=0.01",
        "autoencoder.drop=0.5",
    ]
    Trainer(load_config(None, overrides), resume=True).fit()
    assert "changed settings (train.lr, autoencoder.drop)" in caplog.text
    assert not (tmp_path / "run" / "step-99.tmp").exists()


def test_checkpoint_metadata_that_does_not_fit_is_a_clear_error(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    ckpt = save_checkpoint(tmp_path / "best", model, cfg, tok)
    meta = json.loads((ckpt / "config.json").read_text())
    cases = [
        ([1, 2], "not a JSON object"),
        ({**meta, "src_vocab_size": -3}, "positive integers"),
        ({**meta, "config": "x"}, "no 'config' object"),
        ({**meta, "config": {**meta["config"], "model": {**meta["config"]["model"], "d_model": 48}}}, "size mismatch"),
    ]
    for bad, message in cases:
        rewrite(ckpt, "config.json", json.dumps(bad).encode())
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(ckpt)


def test_save_checkpoint_never_replaces_a_directory_that_is_not_a_checkpoint(tmp_path, tiny_checkpoint_parts):
    cfg, tok, model = tiny_checkpoint_parts
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        save_checkpoint(tmp_path / "mine", model, cfg, tok)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    save_checkpoint(tmp_path / "empty", model, cfg, tok)  # a new or empty directory is fine


def test_bad_training_data_leaves_no_run_directory(tmp_path, capsys):
    make_data(tmp_path, n_train=20, n_valid=4)
    (tmp_path / "train.tsv").write_bytes(b"ein\tone\n\xff\xfe\tbad\n")
    config = run_config(tmp_path, "run", max_steps=2)
    assert main(["train", str(config)]) == 2
    assert "train.tsv:2: not valid UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
