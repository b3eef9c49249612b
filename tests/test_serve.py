"""``seq2seq serve``: the HTTP API over tiny models trained here, batching across requests, bad
input and overload, the API key, SIGTERM (a real server in a subprocess), and the page in a real
browser (headless Chromium, skipped where none is installed)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the serve extra (starlette, uvicorn) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (starlette, uvicorn) is not installed")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx")

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from seq2seq.cli import main  # noqa: E402
from seq2seq.errors import Seq2SeqError  # noqa: E402
from seq2seq.infer.autoencoder import Autoencoder  # noqa: E402
from seq2seq.infer.quantize import has_onednn_int8  # noqa: E402
from seq2seq.infer.translator import Translator  # noqa: E402
from seq2seq.serve.app import create_app  # noqa: E402
from seq2seq.serve.service import Service  # noqa: E402
from seq2seq.serve.settings import ServeSettings  # noqa: E402

LETTERS = "a b c d e f g h".split()
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel".split()


def _words(rng: random.Random, vocab: list[str], lo: int, hi: int) -> str:
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(lo, hi)))


@pytest.fixture(scope="module")
def reverse_ckpt(tmp_path_factory) -> Path:
    """A tiny Transformer that reverses letter sequences (a few seconds on an idle machine)."""
    d = tmp_path_factory.mktemp("serve_reverse")
    rng = random.Random(0)
    for name, n in (("train", 3000), ("valid", 100)):
        rows = [_words(rng, LETTERS, 3, 7) for _ in range(n)]
        (d / f"{name}.tsv").write_text("".join(f"{r}\t{' '.join(reversed(r.split()))}\n" for r in rows))
    (d / "config.yaml").write_text(f"""
data: {{format: tsv, path: {d}, train: train.tsv, valid: valid.tsv, max_src_tokens: 16, max_tgt_tokens: 16}}
tokenizer: {{model_type: word, vocab_size: 20, joint: true}}
model: {{encoder: transformer, decoder: transformer, attention: multihead, d_model: 64, enc_layers: 2,
        dec_layers: 2, heads: 4, ffn_dim: 128, dropout: 0.0}}
train: {{output_dir: {d / "run"}, precision: fp32, max_tokens: 1024, lr: 3.0e-3, warmup_steps: 50,
        label_smoothing: 0.0, max_steps: 300, valid_every: 300, valid_bleu: false,
        early_stop_metric: exact_match, progress: false, seed: 3, keep_last: 0}}
search: {{beam: 3, max_len_a: 1.0, max_len_b: 3}}
""")
    assert main(["train", str(d / "config.yaml")]) == 0
    return d / "run" / "best"


def _small_overrides(d: Path, out: Path) -> list[str]:
    return [
        f"data.path={d}",
        "tokenizer.model_type=word",
        "tokenizer.vocab_size=20",
        "model.encoder=gru",
        "model.d_model=32",
        "model.context_dim=16",
        "model.enc_layers=1",
        "model.dropout=0.0",
        f"train.output_dir={out}",
        "train.precision=fp32",
        "train.max_tokens=1024",
        "train.lr=3e-3",
        "train.scheduler=constant",
        "train.warmup_steps=10",
        "train.max_steps=60",
        "train.valid_every=60",
        "train.progress=false",
        "train.keep_last=0",
        "train.label_smoothing=0.0",
    ]


def _train(command: str, d: Path, overrides: list[str]) -> None:
    (d / "c.yaml").write_text("train:\n  seed: 1\n")
    args = [command, str(d / "c.yaml")]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 0


@pytest.fixture(scope="module")
def ae_ckpt(tmp_path_factory) -> Path:
    """A tiny GRU autoencoder (its quality does not matter here)."""
    d = tmp_path_factory.mktemp("serve_ae")
    rng = random.Random(1)
    for name, n in (("train.txt", 1000), ("valid.txt", 50)):
        (d / name).write_text("\n".join(_words(rng, WORDS, 2, 5) for _ in range(n)) + "\n")
    _train(
        "pretrain",
        d,
        [
            *_small_overrides(d, d / "run"),
            "data.format=text",
            "data.train=train.txt",
            "data.valid=valid.txt",
            "model.decoder=gru",
            "search.beam=1",
            "autoencoder.drop=0.0",
            "autoencoder.mask=0.0",
        ],
    )
    return d / "run" / "best"


@pytest.fixture(scope="module")
def cls_ckpt(tmp_path_factory) -> Path:
    """A tiny classifier: label 1 when 'alpha' occurs."""
    d = tmp_path_factory.mktemp("serve_cls")
    rng = random.Random(2)
    for name, n in (("train.tsv", 1000), ("valid.tsv", 50)):
        rows = [_words(rng, WORDS, 2, 5) for _ in range(n)]
        (d / name).write_text("sentence\tlabel\n" + "".join(f"{r}\t{int('alpha' in r.split())}\n" for r in rows))
    _train(
        "classify-train",
        d,
        [
            *_small_overrides(d, d / "run"),
            "data.format=tsv",
            "data.skip_header=true",
            "data.train=train.tsv",
            "data.valid=valid.tsv",
        ],
    )
    return d / "run" / "best"


@pytest.fixture(scope="module")
def reverse_service(reverse_ckpt) -> Service:
    return Service.from_checkpoint(reverse_ckpt, device="cpu")


@contextlib.contextmanager
def client_for(service: Service, **settings):
    app = create_app(service, ServeSettings(**settings))
    with TestClient(app) as client:
        client.batcher = app.state.batcher
        yield client


def wait_until(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


SOURCES = ["a b c d", "h g f e d c b", "c c a", "e f g h a b", "b a", "d d d d e"]


# ---------------------------------------------------------------- the API
def test_translate_gives_the_translators_answers(reverse_service, reverse_ckpt):
    translator = Translator.from_checkpoint(reverse_ckpt, device="cpu")
    texts = [*SOURCES, "", "   "]
    with client_for(reverse_service) as client:
        r = client.post("/translate", json={"texts": texts})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["translation"] for x in results] == translator.translate(texts)
        assert results[-1]["translation"] == "" and "hypotheses" not in results[0]
        r = client.post("/translate", json={"texts": SOURCES[:3], "beam": 4, "nbest": 3, "length_penalty": 0.5})
        assert r.status_code == 200, r.text
        nbest = r.json()["results"]
        assert all(len(x["hypotheses"]) == 3 and x["hypotheses"][0]["translation"] == x["translation"] for x in nbest)
        lp = Translator.from_checkpoint(reverse_ckpt, device="cpu")
        lp.search.length_penalty = 0.5
        expected = lp.translate_hypotheses(SOURCES[:3], beam=4, nbest=3)
        got = [[(h["translation"], h["score"]) for h in x["hypotheses"]] for x in nbest]
        assert [[t for t, _ in hyps] for hyps in got] == [[t for t, _ in hyps] for hyps in expected]
        scores = [s for hyps in expected for _, s in hyps]
        assert [s for hyps in got for _, s in hyps] == pytest.approx(scores, abs=1e-5)
        assert client.post("/translate", json={"texts": []}).json() == {"results": []}


def test_info_health_and_page(reverse_service):
    with client_for(reverse_service) as client:
        info = client.get("/info").json()
        assert info["task"] == "translation" and info["endpoints"] == ["/translate", "/attention"]
        assert info["vocabulary"] == {"source": 12, "target": 12}
        assert info["parameters"] > 0 and info["config"]["model"]["encoder"] == "transformer"
        assert info["checkpoint"]["seq2seq_version"] and info["checkpoint"]["step"] > 0
        assert info["search"]["beam"] == 3 and info["attention"] is True
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["queued_requests"] == 0
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script>" in page.text and not re.search(r"(src|href)=\"(https?:)?//", page.text)


def test_attention_endpoint(reverse_service):
    with client_for(reverse_service) as client:
        r = client.post("/attention", json={"text": "a b c d", "beam": 3})
        assert r.status_code == 200, r.text
        data = r.json()
        translation = client.post("/translate", json={"texts": ["a b c d"]}).json()["results"][0]["translation"]
        assert data["translation"] == translation
        assert data["source_tokens"] == ["▁a", "▁b", "▁c", "▁d"]
        assert len(data["output_tokens"]) == len(translation.split()) + 1 and data["output_tokens"][-1] == "</s>"
        assert len(data["weights"]) == len(data["output_tokens"])
        assert all(len(row) == 4 and abs(sum(row) - 1) < 1e-2 for row in data["weights"])
        given = client.post("/attention", json={"text": "a b c d", "translation": "d c"}).json()
        assert given["translation"] == "d c" and len(given["weights"]) == 3
        assert client.post("/attention", json={"text": "  "}).status_code == 400


BAD_REQUESTS = [
    (b"{", 400, None, "not valid JSON"),
    (b"", 400, None, "empty"),
    (b"\xff\xfe", 400, None, "not UTF-8"),
    (b"[1, 2]", 400, None, "JSON object, not an array"),
    (b'{"texts": NaN}', 400, None, "not valid JSON"),
    (b'{"beam": 2}', 400, "texts", "'texts' is required"),
    (b'{"texts": "a b"}', 400, "texts", "list of strings, not a string"),
    (b'{"texts": ["a", 3]}', 400, "texts[1]", "'texts[1]' must be a string"),
    (b'{"texts": ["\\ud800"]}', 400, "texts[0]", "lone surrogate"),
    (b'{"texts": ["a"], "beam": 0}', 400, "beam", "between 1 and 32"),
    (b'{"texts": ["a"], "beam": 2.5}', 400, "beam", "must be an integer"),
    (b'{"texts": ["a"], "beam": true}', 400, "beam", "must be an integer"),
    (b'{"texts": ["a"], "beam": 2, "nbest": 3}', 400, "nbest", "cannot exceed the beam"),
    (b'{"texts": ["a"], "length_penalty": "x"}', 400, "length_penalty", "must be a number"),
    (b'{"texts": ["a"], "prefixes": ["a", "b"]}', 400, "prefixes", "list of 1 strings or nulls"),
    (b'{"texts": ["a"], "prefixes": [7]}', 400, "prefixes[0]", "must be a string"),
    (b'{"texts": ["a"], "bean": 2}', 400, "bean", "unknown field 'bean'"),
    (json.dumps({"texts": ["a"] * 9}).encode(), 413, "texts", "at most 8 per request"),
    (json.dumps({"texts": ["a", "b " * 40]}).encode(), 413, "texts[1]", "at most 50 per text"),
    (json.dumps({"texts": ["a " * 300]}).encode(), 413, None, "at most 512 are read"),
]


@pytest.mark.parametrize("body,status,field,message", BAD_REQUESTS, ids=[m for *_, m in BAD_REQUESTS])
def test_bad_requests_get_an_answer_naming_the_field(reverse_service, body, status, field, message):
    with client_for(reverse_service, max_texts=8, max_text_chars=50, max_body_bytes=512) as client:
        r = client.post("/translate", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status, r.text
        assert message in r.json()["error"]
        assert r.json().get("field") == field


def test_body_limit_holds_without_content_length(reverse_service):
    def chunks():
        yield b'{"texts": ["'
        for _ in range(100):
            yield b"a " * 10
        yield b'"]}'

    with client_for(reverse_service, max_body_bytes=512) as client:
        r = client.post("/translate", content=chunks())
        assert r.status_code == 413 and "over 512 bytes" in r.json()["error"]


def test_wrong_routes_and_methods(reverse_service):
    with client_for(reverse_service) as client:
        r = client.post("/classify", json={"texts": ["a"]})
        assert r.status_code == 404 and "has no /classify; it serves /translate, /attention" in r.json()["error"]
        assert client.get("/nope").status_code == 404 and "GET /info" in client.get("/nope").json()["error"]
        r = client.get("/translate")
        assert r.status_code == 405 and r.json()["error"] == "GET is not allowed on /translate"


def test_api_key(reverse_service):
    with client_for(reverse_service, api_key="s3cret") as client:
        assert client.get("/health").status_code == 200 and client.get("/").status_code == 200
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            r = client.post("/translate", json={"texts": ["a b"]}, headers=headers)
            assert r.status_code == 401 and "API key" in r.json()["error"]
        assert client.get("/info").status_code == 401
        assert client.post("/translate", json={"texts": ["a b"]}, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_cli_refuses_a_public_address_without_a_key(reverse_ckpt, capsys, monkeypatch):
    monkeypatch.delenv("SEQ2SEQ_API_KEY", raising=False)
    assert main(["serve", "--checkpoint", str(reverse_ckpt), "--host", "0.0.0.0"]) == 2
    assert "set an API key" in capsys.readouterr().err
    assert main(["serve", "--checkpoint", str(reverse_ckpt), "--batch-wait-ms", "-1"]) == 2
    assert "--batch-wait-ms must be >= 0" in capsys.readouterr().err


# ---------------------------------------------------------------- batching across requests
@pytest.mark.parametrize("quantize", [None, "int8-rows"])
def test_concurrent_requests_are_decoded_together_and_answered_alone(reverse_service, reverse_ckpt, quantize):
    """The same text alone and inside a busy batch gives the same answer; each request gets exactly
    its own results, in order. Also with --quantize int8-rows, whose answers are then equal to the
    bit (plain int8's activation scales are per batch: docs/serving.md)."""
    if quantize and not has_onednn_int8():
        pytest.skip("no oneDNN int8 linear in this PyTorch build")
    service = (
        reverse_service if quantize is None else Service.from_checkpoint(reverse_ckpt, device="cpu", quantize=quantize)
    )
    rng = random.Random(5)
    requests = [[_words(rng, LETTERS, 1, 9) for _ in range(rng.randint(1, 4))] for _ in range(12)]
    requests[7] = [SOURCES[0]]
    with client_for(service, batch_wait_ms=0) as client:
        alone = [client.post("/translate", json={"texts": texts, "nbest": 2}).json()["results"] for texts in requests]
        assert client.batcher.stats()["largest_batch_requests"] == 1
        client.batcher.pause()
        with ThreadPoolExecutor(len(requests)) as pool:
            futures = [pool.submit(client.post, "/translate", json={"texts": texts, "nbest": 2}) for texts in requests]
            wait_until(lambda: client.batcher.stats()["queued_requests"] == len(requests), what="queued requests")
            batches = client.batcher.stats()["batches"]
            client.batcher.resume()
            together = [f.result().json()["results"] for f in futures]
        stats = client.batcher.stats()
        assert stats["batches"] == batches + 1 and stats["largest_batch_requests"] == len(requests)
    for texts, one, many in zip(requests, alone, together):
        assert len(many) == len(texts)
        assert [r["translation"] for r in many] == [r["translation"] for r in one]
        assert [[h["translation"] for h in r["hypotheses"]] for r in many] == [
            [h["translation"] for h in r["hypotheses"]] for r in one
        ]
        if quantize:  # integer products and padding that adds exact zeros: the same answer, to the bit
            assert many == one
        else:  # (fp32 products round by the number of rows)
            assert [r["score"] for r in many] == pytest.approx([r["score"] for r in one], abs=1e-4)


def test_requests_with_other_settings_wait_for_their_own_batch(reverse_service):
    with client_for(reverse_service, batch_wait_ms=0) as client:
        client.batcher.pause()
        with ThreadPoolExecutor(4) as pool:
            bodies = [
                {"texts": ["a b c"], "beam": 1},
                {"texts": ["b c d"], "beam": 2},
                {"texts": ["c d e"], "beam": 1},
                {"texts": ["d e f"], "beam": 2},
            ]
            futures = [pool.submit(client.post, "/translate", json=b) for b in bodies]
            wait_until(lambda: client.batcher.stats()["queued_requests"] == 4, what="queued requests")
            client.batcher.resume()
            results = [f.result().json()["results"][0]["translation"] for f in futures]
        assert client.batcher.stats()["batches"] == 2
    translator = reverse_service.model
    assert results == [translator.translate(b["texts"], beam=b["beam"])[0] for b in bodies]


def test_a_full_queue_answers_503_with_retry_after(reverse_service):
    with client_for(reverse_service, max_queue_texts=4, max_texts=4) as client:
        client.batcher.pause()
        with ThreadPoolExecutor(2) as pool:
            first = [pool.submit(client.post, "/translate", json={"texts": ["a b", "c d"]}) for _ in range(2)]
            wait_until(lambda: client.batcher.stats()["queued_texts"] == 4, what="a full queue")
            r = client.post("/translate", json={"texts": ["e f"]})
            assert r.status_code == 503 and "queue is full" in r.json()["error"]
            assert int(r.headers["Retry-After"]) >= 1
            assert client.get("/health").json()["queued_texts"] == 4  # the event loop answers meanwhile
            client.batcher.resume()
            assert [f.result().status_code for f in first] == [200, 200]
        assert client.post("/translate", json={"texts": ["e f"]}).status_code == 200


def test_a_request_waiting_past_the_timeout_gets_504_and_is_not_decoded(reverse_service):
    with client_for(reverse_service, request_timeout_s=0.3) as client:
        client.batcher.pause()
        r = client.post("/translate", json={"texts": ["a b c"]})
        assert r.status_code == 504 and "no answer within 0.3 s" in r.json()["error"]
        assert client.batcher.stats()["queued_requests"] == 0  # withdrawn from the queue
        client.batcher.resume()
        assert client.post("/translate", json={"texts": ["a b c"]}).status_code == 200
        assert client.batcher.stats()["requests"] == 1


def test_decoding_runs_off_the_event_loop_and_a_failing_request_fails_alone(reverse_ckpt):
    service = Service.from_checkpoint(reverse_ckpt, device="cpu")
    gate, inside = threading.Event(), threading.Event()
    real_run = service.run

    def run(key, items):
        inside.set()
        gate.wait(30)
        if any(text == "boom" for text, _ in items):
            raise RuntimeError("model exploded\nsecond line")
        return real_run(key, items)

    service.run = run
    with client_for(service, batch_wait_ms=0) as client, ThreadPoolExecutor(4) as pool:
        slow = pool.submit(client.post, "/translate", json={"texts": ["a b c"]})
        inside.wait(30)
        started = time.monotonic()
        health = client.get("/health").json()
        assert time.monotonic() - started < 5 and health["in_flight_requests"] == 1
        good = pool.submit(client.post, "/translate", json={"texts": ["b c d"]})
        bad = pool.submit(client.post, "/translate", json={"texts": ["boom"]})
        wait_until(lambda: client.batcher.stats()["queued_requests"] == 2, what="queued requests")
        gate.set()
        translator = service.model
        assert slow.result().json()["results"][0]["translation"] == translator.translate(["a b c"])[0]
        assert good.result().json()["results"][0]["translation"] == translator.translate(["b c d"])[0]
        assert bad.result().status_code == 500
        assert bad.result().json() == {"error": "internal error: RuntimeError: model exploded"}


def test_long_texts_are_truncated_with_a_warning(reverse_service):
    with client_for(reverse_service) as client:
        long = " ".join(["a"] * 1100)  # over the model's 1024 positions
        r = client.post("/translate", json={"texts": ["a b", long, "a x b"], "beam": 1})
        assert r.status_code == 200
        results = r.json()["results"]
        assert "warnings" not in results[0]
        assert any("truncated to the model's limit" in w for w in results[1]["warnings"])
        assert any("longer than anything the model was trained on" in w for w in results[1]["warnings"])
        assert any("<unk>" in w for w in results[2]["warnings"])


# ---------------------------------------------------------------- prefixes
@pytest.mark.parametrize("beam", [1, 3])
def test_translator_prefixes(reverse_service, beam):
    """Outputs start with their prefix; a prefix that the unforced output starts with changes
    nothing; a line's output does not depend on the other lines' prefixes."""
    translator = reverse_service.model
    free = translator.translate_hypotheses(SOURCES, beam=beam)
    starts = [" ".join(h[0][0].split()[:2]) for h in free]
    same = translator.translate_hypotheses(SOURCES, beam=beam, prefixes=starts)
    assert [h[0][0] for h in same] == [h[0][0] for h in free]
    assert [h[0][1] for h in same] == pytest.approx([h[0][1] for h in free], abs=1e-5)
    prefixes = ["h h", None, "a", "", "b c d e f g h a", None]
    forced = translator.translate(SOURCES, beam=beam, prefixes=prefixes)
    for out, prefix, alone_free in zip(forced, prefixes, free):
        assert out.startswith(prefix or "")
        if not prefix:
            assert out == alone_free[0][0]
    alone = [translator.translate([s], beam=beam, prefixes=[p])[0] for s, p in zip(SOURCES, prefixes)]
    assert alone == forced
    assert translator.translate(["", "a b"], beam=beam, prefixes=["c d", None]) == [
        "c d",
        translator.translate(["a b"], beam=beam)[0],
    ]  # an empty line's output: its prefix
    with pytest.raises(ValueError, match="2 prefixes for 1 lines"):
        translator.translate(["a b"], prefixes=["a", "b"])


def test_cli_translate_prefix_file(reverse_ckpt, reverse_service, tmp_path, capsys):
    src, prefixes, out = tmp_path / "in.txt", tmp_path / "prefixes.txt", tmp_path / "out.txt"
    src.write_text("\n".join(SOURCES[:4]) + "\n")
    prefixes.write_text("b b\n\na c\n\n")
    ckpt = str(reverse_ckpt)
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                ckpt,
                "-i",
                str(src),
                "-o",
                str(out),
                "--prefix-file",
                str(prefixes),
                "--quiet",
                "--window",
                "3",
            ]
        )
        == 0
    )
    expected = reverse_service.model.translate(SOURCES[:4], prefixes=["b b", None, "a c", None])
    assert out.read_text().splitlines() == expected
    assert expected[0].startswith("b b") and expected[2].startswith("a c")
    prefixes.write_text("b b\n")
    assert main(["translate", "--checkpoint", ckpt, "-i", str(src), "--prefix-file", str(prefixes)]) == 2
    assert "has 1 line(s) but" in capsys.readouterr().err


def test_prefixes_through_the_server(reverse_service):
    with client_for(reverse_service) as client:
        body = {"texts": ["a b c d", "e f g"], "prefixes": ["b b", None], "nbest": 2}
        r = client.post("/translate", json=body)
        assert r.status_code == 200, r.text
        first, second = r.json()["results"]
        assert first["translation"].startswith("b b")
        assert all(h["translation"].startswith("b b") for h in first["hypotheses"])
        assert second["translation"] == reverse_service.model.translate(["e f g"])[0]


# ---------------------------------------------------------------- autoencoders and classifiers
def test_autoencoder_endpoints(ae_ckpt):
    service = Service.from_checkpoint(ae_ckpt, device="cpu")
    ae = Autoencoder.from_checkpoint(ae_ckpt, device="cpu")
    texts = ["alpha bravo", "golf hotel echo", ""]
    with client_for(service) as client:
        assert client.get("/info").json()["endpoints"] == ["/encode", "/reconstruct", "/score"]
        vectors = client.post("/encode", json={"texts": texts}).json()["results"]
        with pytest.warns(UserWarning, match="1 empty input line"):
            expected = ae.encode(texts)
        assert [x for v in vectors for x in v["vector"]] == pytest.approx(expected.ravel().tolist(), abs=1e-5)
        assert "warnings" in vectors[2] and "warnings" not in vectors[0]
        r = client.post("/reconstruct", json={"texts": texts, "beam": 2}).json()["results"]
        assert [x["reconstruction"] for x in r] == ae.reconstruct(texts, beam=2)
        scores = client.post("/score", json={"texts": texts}).json()["results"]
        with pytest.warns(UserWarning, match="1 empty input line"):
            expected = ae.score(texts)
        assert scores[0]["per_token"] == pytest.approx(expected[0, 2], abs=1e-3) and scores[0]["tokens"] == 3
        assert scores[2] == {"per_token": None, "total": None, "tokens": 0, "warnings": scores[2]["warnings"]}
        r = client.post("/encode", json={"texts": texts, "bits": True})
        assert r.status_code == 400 and r.json()["field"] == "bits"
        assert client.post("/translate", json={"texts": texts}).status_code == 404


def test_classifier_endpoints(cls_ckpt):
    service = Service.from_checkpoint(cls_ckpt, device="cpu")
    ae = Autoencoder.from_checkpoint(cls_ckpt, device="cpu")
    texts = ["alpha golf", "golf hotel", ""]
    with client_for(service) as client:
        info = client.get("/info").json()
        assert info["endpoints"] == ["/encode", "/classify"] and info["labels"] == ["0", "1"]
        results = client.post("/classify", json={"texts": texts}).json()["results"]
        with pytest.warns(UserWarning, match="1 empty input line"):
            labels, probs = ae.classify(texts)
        assert [r["label"] for r in results] == labels
        assert results[0]["probabilities"]["1"] == pytest.approx(float(probs[0][1]), abs=1e-3)
        assert results[2]["probability"] is None and results[2]["warnings"]
        assert len(client.post("/encode", json={"texts": texts}).json()["results"][0]["vector"]) == 16


# ---------------------------------------------------------------- a real server
def _start_server(ckpt: Path, *flags: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seq2seq",
            "serve",
            "--checkpoint",
            str(ckpt),
            "--port",
            "0",
            "--device",
            "cpu",
            "--no-access-log",
            *flags,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
        if found:
            url = found.group(1)
            threading.Thread(target=lambda: (lines.extend(proc.stderr), proc.stderr.close()), daemon=True).start()
            wait_until(lambda u=url: _get(u + "/health") == 200, what="the server to answer")
            proc.log = lines
            return proc, url
    proc.kill()
    raise AssertionError("the server did not start:\n" + "".join(lines))


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_the_requests_in_flight_and_exits_0(reverse_ckpt, workers):
    # A long batch wait keeps the requests queued while SIGTERM arrives.
    proc, url = _start_server(reverse_ckpt, "--batch-wait-ms", "3000", "--workers", str(workers))
    try:
        runtime = httpx.get(url + "/info", timeout=5).json()["runtime"]
        assert runtime.get("workers", 1) == workers
        with ThreadPoolExecutor(6) as pool:
            futures = [
                pool.submit(httpx.post, url + "/translate", json={"texts": [text]}, timeout=60) for text in SOURCES
            ]
            wait_until(
                lambda: httpx.get(url + "/health", timeout=5).json()["queued_requests"] == 6, what="six queued requests"
            )
            proc.send_signal(signal.SIGTERM)
            answers = [f.result() for f in futures]
        assert [a.status_code for a in answers] == [200] * 6
        expected = Translator.from_checkpoint(reverse_ckpt, device="cpu").translate(SOURCES)
        assert [a.json()["results"][0]["translation"] for a in answers] == expected
        assert proc.wait(60) == 0, "".join(proc.log)
        assert _get(url + "/health") == 0  # no longer listening
        if workers > 1:  # the decoding processes are gone with the server
            pids = [int(p) for p in re.search(r"pids \[([\d, ]+)\]", "".join(proc.log)).group(1).split(",")]
            assert len(pids) == workers
            wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), 10, "the workers to exit")
    finally:
        if proc.poll() is None:
            proc.kill()


# ---------------------------------------------------------------- decoding workers (--workers N)
@pytest.fixture(scope="module")
def worker_pool(reverse_ckpt):
    from seq2seq.serve.workers import WorkerPool, WorkerSpec

    pool = WorkerPool(WorkerSpec(str(reverse_ckpt)), 2)
    pool.start()
    yield pool
    pool.close()


def _same_answers(got: list[dict], expected: list[dict]) -> None:
    """Equal texts; scores equal to float rounding (another batch sums in another order)."""
    for g, e in zip(got, expected, strict=True):
        assert g["translation"] == e["translation"] and g["score"] == pytest.approx(e["score"], abs=1e-4)
        for gh, eh in zip(g.get("hypotheses", []), e.get("hypotheses", []), strict=True):
            assert gh["translation"] == eh["translation"] and gh["score"] == pytest.approx(eh["score"], abs=1e-4)


def test_workers_answer_as_the_service_does(reverse_service, worker_pool):
    items = [(text, None) for text in SOURCES]
    for index, run in enumerate(worker_pool.runners()):
        for key in [("translate", 3, 2, None), ("translate", 1, 1, 0.5)]:
            _same_answers(run(key, items[index:]), reverse_service.run(key, items[index:]))
        with pytest.raises(Seq2SeqError, match="cannot classify"):  # the worker's error, as the service raises it
            run(("classify",), ["a b"])


def test_concurrent_requests_through_workers(reverse_service, worker_pool):
    expected = [r["translation"] for r in reverse_service.run(("translate", 3, 1, None), [(t, None) for t in SOURCES])]
    app = create_app(reverse_service, ServeSettings(workers=2, batch_wait_ms=200), run=worker_pool.runners())
    with TestClient(app) as client, ThreadPoolExecutor(len(SOURCES)) as threads:
        answers = list(threads.map(lambda t: client.post("/translate", json={"texts": [t]}), SOURCES))
        assert [a.json()["results"][0]["translation"] for a in answers] == expected
        assert client.get("/health").json()["batches"] < len(SOURCES)  # merged (each worker its own batches)


def test_a_worker_that_dies_is_started_again(worker_pool):
    key, items = ("translate", 3, 1, None), [(t, None) for t in SOURCES]
    first, second = worker_pool.runners()
    expected = first(key, items)
    os.kill(worker_pool.pids[0], signal.SIGKILL)
    with pytest.raises(RuntimeError, match="decoding worker 0 stopped"):
        first(key, items)
    _same_answers(second(key, items), expected)  # the other worker went on as before
    _same_answers(first(key, items), expected)


def test_workers_keep_to_cores_of_their_own(worker_pool, monkeypatch):
    from seq2seq.serve.workers import worker_cpus

    for pid, cpus in zip(worker_pool.pids, worker_pool.cpus):  # (unpinned where 2 workers do not fit)
        assert os.sched_getaffinity(pid) == (cpus if cpus is not None else os.sched_getaffinity(0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5, 6, 7})
    assert worker_cpus(2, 2) == [{4, 5}, {6, 7}]
    assert worker_cpus(4, 1) == [{4}, {5}, {6}, {7}]
    assert worker_cpus(3, 2) == [None, None, None]  # more threads than cores: the scheduler shares them out
    assert worker_cpus(2, 1) == [None, None]  # half the cores: a second server alike would pin to the same ones


def test_a_worker_that_cannot_load_says_why(tmp_path):
    from seq2seq.serve.workers import WorkerPool, WorkerSpec

    with pytest.raises(Seq2SeqError, match="could not load the checkpoint"):
        WorkerPool(WorkerSpec(str(tmp_path)), 1).start()
    with pytest.raises(Seq2SeqError, match="--workers must be"):
        ServeSettings(workers=0).check()


# ---------------------------------------------------------------- the page, in a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def server_thread(app):
    """The app on a real uvicorn server, in a thread, on a free localhost port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn to start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_page_in_a_real_browser(reverse_service, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    app = create_app(reverse_service, ServeSettings())
    with server_thread(app) as url, playwright.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except playwright.Error as e:
            pytest.skip(f"{CHROMIUM} did not start: {str(e).strip().splitlines()[0][:200]}")
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            page.wait_for_function("document.getElementById('info').textContent.startsWith('translation')")
            expected = httpx.post(url + "/translate", json={"texts": ["a b c d", "e f g"], "nbest": 2}).json()
            page.fill("#text", "a b c d\ne f g")
            page.fill("#nbest", "2")
            page.click("#run")
            page.wait_for_selector(".result .hypothesis")
            outputs = page.locator(".result .translation").all_text_contents()
            assert outputs == [r["translation"] for r in expected["results"]]
            hypotheses = page.locator(".result:first-child .hypothesis").all_text_contents()
            assert len(hypotheses) == 2
            assert hypotheses[1].startswith(expected["results"][0]["hypotheses"][1]["translation"])
            page.locator(".show-attention").first.click()
            page.wait_for_selector(".attention-map")
            rows = page.locator(".attention-map tbody tr").count()
            columns = page.locator(".attention-map thead th").count() - 1
            assert (rows, columns) == (len(expected["results"][0]["translation"].split()) + 1, 4)
            page.fill("#nbest", "9")
            page.click("#run")
            page.wait_for_function("document.getElementById('status').className === 'error'")
            assert "cannot exceed the beam" in page.text_content("#status")
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            assert not errors
        finally:
            browser.close()
