"""Process-wide runtime settings: applied by default, the user's environment wins."""

from __future__ import annotations

import os
import sys

import pytest

from seq2seq.runtime import limit_onednn_cache, retain_freed_memory


def test_onednn_cache_limit_is_a_default_the_user_can_override(monkeypatch) -> None:
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    limit_onednn_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "64"
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024")
    limit_onednn_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "1024"


def _is_glibc() -> bool:
    import platform

    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize("variable", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_retain_freed_memory_leaves_a_user_setting_alone(monkeypatch, variable) -> None:
    monkeypatch.setenv(variable, "131072")
    assert retain_freed_memory() is False


def test_retain_freed_memory_applies_on_glibc(monkeypatch) -> None:
    for variable in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(variable, raising=False)
    assert retain_freed_memory() is _is_glibc()


def test_retain_freed_memory_is_a_no_op_elsewhere(monkeypatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert retain_freed_memory() is False


def test_the_public_api_is_importable_from_the_top_and_import_stays_light() -> None:
    """``import seq2seq`` pulls in no PyTorch; each public name loads its module on first use."""
    import subprocess

    code = (
        "import sys, seq2seq; assert 'torch' not in sys.modules, 'import seq2seq loaded torch'; "
        "from seq2seq import Autoencoder, Config, Seq2SeqError, Trainer, Translator, load_config; "
        "from seq2seq.train.trainer import Trainer as T; assert Trainer is T; "
        "assert set(seq2seq.__all__) <= set(dir(seq2seq))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    import seq2seq

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        seq2seq.Nope  # noqa: B018
