"""seq2seq train's choice of malloc (seq2seq.allocator): the decision, and the re-execution."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from seq2seq.allocator import JEMALLOC_CONF, allocator_env, find_jemalloc
from seq2seq.errors import Seq2SeqError


def test_auto_preloads_the_library_once_and_keeps_the_rest(tmp_path):
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    env = {"SEQ2SEQ_JEMALLOC": str(lib), "LD_PRELOAD": "/opt/other.so", "RANK": "3"}
    new = allocator_env(env, platform="linux")
    assert new["LD_PRELOAD"] == f"{lib}:/opt/other.so"
    assert new["MALLOC_CONF"] == JEMALLOC_CONF and new["RANK"] == "3"
    assert allocator_env(new, platform="linux") is None  # never twice
    assert allocator_env({**env, "MALLOC_CONF": "narenas:2"}, platform="linux")["MALLOC_CONF"] == "narenas:2"


def test_system_other_platforms_and_a_missing_library(tmp_path, monkeypatch):
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    assert allocator_env({"SEQ2SEQ_ALLOCATOR": "system", "SEQ2SEQ_JEMALLOC": str(lib)}, platform="linux") is None
    assert allocator_env({"SEQ2SEQ_JEMALLOC": str(lib)}, platform="darwin") is None
    assert allocator_env({"LD_PRELOAD": "/x/libjemalloc.so.2"}, platform="linux") is None  # already on it
    with pytest.raises(Seq2SeqError, match="SEQ2SEQ_ALLOCATOR=fast: use auto, jemalloc or system"):
        allocator_env({"SEQ2SEQ_ALLOCATOR": "fast"}, platform="linux")
    with pytest.raises(Seq2SeqError, match="SEQ2SEQ_JEMALLOC=.*no such file"):
        allocator_env({"SEQ2SEQ_JEMALLOC": str(tmp_path / "absent.so")}, platform="linux")
    monkeypatch.setattr("seq2seq.allocator.CANDIDATES", ())
    monkeypatch.setattr("ctypes.util.find_library", lambda name: None)
    assert find_jemalloc({}) is None
    assert allocator_env({}, platform="linux") is None  # auto: go on as is
    with pytest.raises(Seq2SeqError, match="apt-get install libjemalloc2"):
        allocator_env({"SEQ2SEQ_ALLOCATOR": "jemalloc"}, platform="linux")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is Linux's")
def test_the_command_line_reexecutes_on_the_library(tmp_path):
    # The real library where it is installed (CI installs it): the process that runs the command
    # must have it preloaded and mapped.
    library = find_jemalloc(os.environ)
    if library is None:
        pytest.skip("no libjemalloc on this machine (apt-get install libjemalloc2)")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "SEQ2SEQ_ALLOCATOR_CHOSEN", "MALLOC_CONF")}
    missing = tmp_path / "missing.yaml"
    run = subprocess.run(
        [sys.executable, "-m", "seq2seq", "train", str(missing)], env=env, capture_output=True, text=True, timeout=120
    )
    # the config is missing: the error comes from the re-executed process, which is on jemalloc
    assert run.returncode == 2 and "missing.yaml" in run.stderr
    probe = (
        "import os, runpy, sys; sys.argv = ['seq2seq', 'train', sys.argv[1]]; "
        "from seq2seq.cli.main import main; code = main(); "
        "print('PRELOAD', os.environ.get('LD_PRELOAD'), os.environ.get('MALLOC_CONF')); "
        "print('MAPPED', 'jemalloc' in open('/proc/self/maps').read()); sys.exit(code)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(missing)], env=env, capture_output=True, text=True, timeout=120
    )
    assert f"PRELOAD {library} {JEMALLOC_CONF}" in run.stdout, run.stdout + run.stderr
    assert "MAPPED True" in run.stdout  # the library is really loaded in the process that trained
