"""Data-parallel training under torchrun (gloo, CPU): 2 processes with half the per-rank batch
reach the parameters of 1 process with the whole batch; validation and logs happen once;
--resume works."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seq2seq.config import load_config
from seq2seq.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def overrides(tmp_path: Path, output: str, max_tokens: int, steps: int = 6) -> list[str]:
    rng = random.Random(1)
    rows = [[rng.choice("abcdefghij") for _ in range(rng.randint(2, 7))] for _ in range(300)]
    (tmp_path / "pairs.tsv").write_text("".join(f"{' '.join(w)}\t{' '.join(reversed(w))}\n" for w in rows))
    (tmp_path / "valid.tsv").write_text("".join(f"{' '.join(w)}\t{' '.join(reversed(w))}\n" for w in rows[:20]))
    # dropout 0: the ranks draw different dropout masks than one process would
    return [
        "data.format=tsv",
        f"data.path={tmp_path}",
        "data.train=pairs.tsv",
        "data.valid=valid.tsv",
        "tokenizer.model_type=word",
        "tokenizer.vocab_size=16",
        "model.encoder=transformer",
        "model.decoder=transformer",
        "model.d_model=32",
        "model.heads=2",
        "model.ffn_dim=64",
        "model.enc_layers=1",
        "model.dec_layers=1",
        "model.dropout=0",
        "train.precision=fp32",
        "train.threads=1",
        f"train.max_tokens={max_tokens}",
        f"train.max_steps={steps}",
        "train.valid_every=3",
        "train.log_every=1",
        "train.keep_last=0",
        "train.progress=false",
        "train.warmup_steps=2",
        f"train.output_dir={tmp_path / output}",
    ]


def torchrun(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "seq2seq",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )


@pytest.mark.slow
def test_two_processes_with_half_batches_match_one_process(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    Trainer(load_config(None, overrides(tmp_path, "single", max_tokens=256))).fit()
    (tmp_path / "empty.yaml").write_text("{}\n")
    sets = [x for o in overrides(tmp_path, "ddp", max_tokens=128) for x in ("--set", o)]
    proc = torchrun(tmp_path, ["train", str(tmp_path / "empty.yaml"), *sets])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

    single, ddp = (
        load_file(str(tmp_path / "single/last/model.safetensors")),
        load_file(str(tmp_path / "ddp/last/model.safetensors")),
    )
    assert set(single) == set(ddp)
    d = 32
    for name in single:
        a, b = single[name].clone(), ddp[name].clone()
        # The attention *key* bias has an exactly zero gradient (softmax ignores a constant shift),
        # so its float-noise gradient differs with the summation order and Adam scales noise to
        # full steps: those entries are left out; every other parameter must agree.
        if name.endswith("qkv_proj.bias"):
            a[d : 2 * d] = b[d : 2 * d] = 0
        if name.endswith("kv_proj.bias") and "qkv" not in name:
            a[:d] = b[:d] = 0
        assert torch.allclose(a, b, atol=2e-5, rtol=1e-4), name
    assert max(float((single[n] - ddp[n]).abs().max()) for n in single if "bias" not in n) < 2e-5

    records = [json.loads(line) for line in (tmp_path / "ddp/train_log.jsonl").read_text().splitlines()]
    assert records[0]["world_size"] == 2
    assert [r["step"] for r in records if r["event"] == "train"] == [1, 2, 3, 4, 5, 6]  # rank 0 alone logs
    assert [r["step"] for r in records if r["event"] == "valid"] == [3, 6]  # validation once, not per rank
    one = [json.loads(line) for line in (tmp_path / "single/train_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in records if r["event"] == "train"] == pytest.approx(
        [r["loss"] for r in one if r["event"] == "train"], rel=1e-4
    )

    proc = torchrun(tmp_path, ["train", str(tmp_path / "empty.yaml"), *sets, "--resume", "--set", "train.max_steps=8"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "ddp/train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "train"] == list(range(1, 9))


def test_nccl_with_more_processes_than_gpus_is_refused_with_what_to_do(monkeypatch):
    """NCCL refuses two ranks on one GPU deep inside its first collective; say so before starting."""
    from seq2seq.errors import ConfigError
    from seq2seq.train import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.delenv("SEQ2SEQ_DIST_BACKEND", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="2 processes per machine but 1 GPU.*SEQ2SEQ_DIST_BACKEND=gloo"):
        distributed.init_distributed("cuda")
    monkeypatch.setenv("SEQ2SEQ_DIST_BACKEND", "mpi")
    with pytest.raises(ConfigError, match="SEQ2SEQ_DIST_BACKEND='mpi': use nccl or gloo"):
        distributed.init_distributed("cpu")


def test_cudnn_attention_is_left_alone_without_cuda_or_when_asked_for(monkeypatch):
    from seq2seq.runtime import avoid_per_shape_attention_plans

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert avoid_per_shape_attention_plans() is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("SEQ2SEQ_CUDNN_ATTENTION", "1")
    assert avoid_per_shape_attention_plans() is False
    monkeypatch.delenv("SEQ2SEQ_CUDNN_ATTENTION")
    calls = []
    monkeypatch.setattr(torch.backends.cuda, "enable_cudnn_sdp", calls.append)
    assert avoid_per_shape_attention_plans() is True and calls == [False]
