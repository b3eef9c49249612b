"""The HTTP side of ``seq2seq serve``: a Starlette app over a :class:`~seq2seq.serve.service.Service`.

Routes (JSON in and out; docs/serving.md has examples):

* ``GET /`` the page to try the model; ``GET /health``; ``GET /info``;
* ``POST /translate`` (translation and digits models), ``POST /attention`` (one sentence's
  attention map), ``POST /encode``, ``/reconstruct``, ``/score``, ``/classify`` (autoencoder and
  classifier checkpoints, as the CLI has them).

Every answer is JSON (the page aside), also every error: ``{"error": MESSAGE, "field": NAME}``
with 400 for a bad body or field (the message names it), 401 without the API key, 404 for an
operation the checkpoint lacks, 413 for a body, a list of texts or a text over its limit, 503
with ``Retry-After`` when the queue is full (or the server is stopping), 504 when the answer
takes longer than the request timeout, 500 for a bug (one line; the log has the traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from typing import Any, Callable, Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from seq2seq import __version__
from seq2seq.errors import Seq2SeqError
from seq2seq.serve.batcher import Batcher, Closed, QueueFull, TimedOut
from seq2seq.serve.service import Service
from seq2seq.serve.settings import ServeSettings

log = logging.getLogger("seq2seq.serve")

__all__ = ["ServeSettings", "create_app"]


class ApiError(Exception):
    """An answer other than 200, with a message (and the field it is about)."""

    def __init__(
        self, status: int, message: str, field: Optional[str] = None, headers: Optional[dict[str, str]] = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers or {}


def _error(
    status: int, message: str, field: Optional[str] = None, headers: Optional[dict[str, str]] = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


# ---------------------------------------------------------------- reading requests
async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, at most ``limit`` bytes (413 past it, 400 if not an object)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise ApiError(413, f"the body has {int(declared):,} bytes; at most {limit:,} are read")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is over {limit:,} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, 'the body is empty: send a JSON object, e.g. {"texts": ["..."]}')
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not UTF-8") from None
    except (ValueError, RecursionError) as e:
        raise ApiError(400, f"the body is not valid JSON ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"the body must be a JSON object, not {_json_type(body)}")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


class Fields:
    """The fields of one request body, checked one by one; unknown fields are refused."""

    def __init__(self, body: dict[str, Any], known: tuple[str, ...]) -> None:
        unknown = sorted(set(body) - set(known))
        if unknown:
            raise ApiError(400, f"unknown field '{unknown[0]}' (this endpoint reads: {', '.join(known)})", unknown[0])
        self.body = body

    def texts(self, name: str, max_texts: int, max_chars: int) -> list[str]:
        if name not in self.body:
            raise ApiError(400, f"'{name}' is required: a list of strings", name)
        value = self.body[name]
        if not isinstance(value, list):
            raise ApiError(400, f"'{name}' must be a list of strings, not {_json_type(value)}", name)
        if len(value) > max_texts:
            raise ApiError(413, f"'{name}' has {len(value)} texts; at most {max_texts} per request", name)
        for i, text in enumerate(value):
            _check_text(text, f"{name}[{i}]", max_chars)
        return value

    def text(self, name: str, max_chars: int, required: bool = True) -> Optional[str]:
        value = self.body.get(name)
        if value is None:
            if required:
                raise ApiError(400, f"'{name}' is required: a string", name)
            return None
        _check_text(value, name, max_chars)
        return value

    def optional_texts(self, name: str, count: int, max_chars: int) -> Optional[list[Optional[str]]]:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != count:
            raise ApiError(400, f"'{name}' must be a list of {count} strings or nulls (one per text)", name)
        for i, text in enumerate(value):
            if text is not None:
                _check_text(text, f"{name}[{i}]", max_chars)
        return [text or None for text in value]

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.body.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ApiError(400, f"'{name}' must be an integer, not {_json_type(value)} {json.dumps(value)[:40]}", name)
        if not low <= value <= high:
            raise ApiError(400, f"'{name}' must be between {low} and {high}, got {int(value)}", name)
        return int(value)

    def number(self, name: str, low: float, high: float) -> Optional[float]:
        value = self.body.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ApiError(400, f"'{name}' must be a number, not {_json_type(value)}", name)
        if not low <= value <= high:
            raise ApiError(400, f"'{name}' must be between {low:g} and {high:g}, got {value:g}", name)
        return float(value)

    def flag(self, name: str) -> bool:
        value = self.body.get(name, False)
        if not isinstance(value, bool):
            raise ApiError(400, f"'{name}' must be true or false, not {_json_type(value)}", name)
        return value


def _check_text(text: Any, field: str, max_chars: int) -> None:
    if not isinstance(text, str):
        raise ApiError(400, f"'{field}' must be a string, not {_json_type(text)}", field)
    if len(text) > max_chars:
        raise ApiError(413, f"'{field}' has {len(text):,} characters; at most {max_chars:,} per text", field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"'{field}' is not valid Unicode (a lone surrogate escape)", field) from None


# ---------------------------------------------------------------- the app
def create_app(
    service: Service,
    settings: Optional[ServeSettings] = None,
    run: Optional[Sequence[Callable[[Any, list[Any]], list[Any]]]] = None,
) -> Starlette:
    """The Starlette app serving ``service``; its lifespan starts and stops the batcher (a test
    client must be used as a context manager: ``with TestClient(app) as client``). ``run``: what
    decodes batches, one callable with :meth:`Service.run`'s signature per decoder (default:
    ``service.run`` on one batcher thread; ``seq2seq serve --workers N`` passes a
    :class:`~seq2seq.serve.workers.WorkerPool`'s ``runners()``, each fed batches of its own)."""
    settings = settings or ServeSettings()
    settings.check()
    search = service.search

    def cap(key: Any) -> int:  # a full decoding batch (for each worker: each takes batches of its own)
        return settings.max_batch_texts or service.batch_cap(key)

    batcher = Batcher(
        run or service.run, cap, max_wait=settings.batch_wait_ms / 1000.0, max_queue=settings.max_queue_texts
    )
    page = resources.files("seq2seq.serve").joinpath("page.html").read_text(encoding="utf-8")

    def authorised(request: Request) -> bool:
        if not settings.api_key:
            return True
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return given is not None and hmac.compare_digest(given.encode(), settings.api_key.encode())

    def endpoint(handler: Callable[..., Any], op: Optional[str] = None) -> Callable[[Request], Any]:
        async def wrapped(request: Request) -> Response:
            if not authorised(request):
                return _error(
                    401,
                    "this server needs an API key: send it as the X-API-Key header",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if op is not None and op not in service.operations:
                serves = ", ".join(f"/{o}" for o in service.operations)
                why = " (model.attention is none)" if op == "attention" and service.task == "translation" else ""
                return _error(404, f"this {service.task} checkpoint has no /{op}{why}; it serves {serves}")
            try:
                return await handler(request)
            except ApiError as e:
                return _error(e.status, e.message, e.field, e.headers)
            except QueueFull as e:
                return _error(503, str(e), headers={"Retry-After": str(e.retry_after)})
            except Closed as e:
                return _error(503, str(e), headers={"Retry-After": "5"})
            except TimedOut as e:
                return _error(504, f"{e}: the server is busy; retry later or raise --request-timeout")
            except Seq2SeqError as e:
                return _error(400, str(e))
            except Exception as e:  # noqa: BLE001 - a bug: one line to the client, the traceback to the log
                log.exception("error in %s", request.url.path)
                detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
                return _error(500, f"internal error: {type(e).__name__}{': ' + detail if detail else ''}")

        return wrapped

    async def decode(key: tuple, items: list[Any]) -> list[Any]:
        return await batcher.submit(key, items, settings.request_timeout_s)

    async def read(request: Request, known: tuple[str, ...]) -> Fields:
        return Fields(await _read_json(request, settings.max_body_bytes), known)

    # ------------------------------------------------------------ routes
    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def health(request: Request) -> Response:
        status = "stopping" if batcher.closing else "ok"
        return JSONResponse({"status": status, **batcher.stats()}, status_code=503 if batcher.closing else 200)

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                **service.info(),
                "endpoints": [f"/{op}" for op in service.operations],
                "server": {
                    "seq2seq_version": __version__,
                    "batch_wait_ms": settings.batch_wait_ms,
                    "max_batch_texts": settings.max_batch_texts or None,
                    "max_queue_texts": settings.max_queue_texts,
                    "max_texts": settings.max_texts,
                    "max_text_chars": settings.max_text_chars,
                    "max_body_bytes": settings.max_body_bytes,
                    "request_timeout_s": settings.request_timeout_s,
                    "max_beam": settings.max_beam,
                },
            }
        )

    async def translate(request: Request) -> Response:
        f = await read(request, ("texts", "beam", "nbest", "length_penalty", "prefixes"))
        texts = f.texts("texts", settings.max_texts, settings.max_text_chars)
        beam = f.integer("beam", search.beam, 1, settings.max_beam)
        nbest = f.integer("nbest", 1, 1, settings.max_beam)
        if nbest > beam:
            raise ApiError(400, f"'nbest' ({nbest}) cannot exceed the beam ({beam}); send a larger 'beam'", "nbest")
        length_penalty = f.number("length_penalty", 0.0, 10.0)
        prefixes = f.optional_texts("prefixes", len(texts), settings.max_text_chars)
        items = list(zip(texts, prefixes or [None] * len(texts)))
        return JSONResponse({"results": await decode(("translate", beam, nbest, length_penalty), items)})

    async def attention(request: Request) -> Response:
        f = await read(request, ("text", "translation", "beam"))
        text = f.text("text", settings.max_text_chars)
        given = f.text("translation", settings.max_text_chars, required=False)
        beam = f.integer("beam", search.beam, 1, settings.max_beam)
        if not text.strip():
            raise ApiError(400, "'text' is empty: there is no sentence to show", "text")
        (result,) = await decode(("attention", beam), [(text, given)])
        return JSONResponse(result)

    async def encode(request: Request) -> Response:
        f = await read(request, ("texts", "bits"))
        texts = f.texts("texts", settings.max_texts, settings.max_text_chars)
        bits = f.flag("bits")
        if bits and service.cfg.model.bottleneck != "binary":
            raise ApiError(400, "'bits' needs a checkpoint with a binary code layer (model.bottleneck: binary)", "bits")
        return JSONResponse({"results": await decode(("encode", bits), texts)})

    async def reconstruct(request: Request) -> Response:
        f = await read(request, ("texts", "beam"))
        texts = f.texts("texts", settings.max_texts, settings.max_text_chars)
        beam = f.integer("beam", search.beam, 1, settings.max_beam)
        return JSONResponse({"results": await decode(("reconstruct", beam), texts)})

    def plain(op: str) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            f = await read(request, ("texts",))
            texts = f.texts("texts", settings.max_texts, settings.max_text_chars)
            return JSONResponse({"results": await decode((op,), texts)})

        return handler

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/info", endpoint(info), methods=["GET"]),
        Route("/translate", endpoint(translate, "translate"), methods=["POST"]),
        Route("/attention", endpoint(attention, "attention"), methods=["POST"]),
        Route("/encode", endpoint(encode, "encode"), methods=["POST"]),
        Route("/reconstruct", endpoint(reconstruct, "reconstruct"), methods=["POST"]),
        Route("/score", endpoint(plain("score"), "score"), methods=["POST"]),
        Route("/classify", endpoint(plain("classify"), "classify"), methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {
            404: f"no route {request.url.path}; see GET /info for this server's endpoints",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, exc.detail)
        return _error(exc.status_code, message, headers=getattr(exc, "headers", None))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:  # uvicorn comes here once the open requests are answered; finish what is queued
            await asyncio.to_thread(batcher.close)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.batcher = batcher
    app.state.service = service
    app.state.settings = settings
    return app
