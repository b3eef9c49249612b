"""``seq2seq serve``: an HTTP API (and a page) over a checkpoint; see :mod:`seq2seq.serve` and
docs/serving.md."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import sys
from typing import Any

from seq2seq.cli.decoding import add_decoding_flags, decoding_settings
from seq2seq.cli.io import add_device_flag, checkpoint_errors, saved_config
from seq2seq.errors import Seq2SeqError

LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_local(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (reachable from this machine only)."""
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port), with a clear error if it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        raise Seq2SeqError(
            f"cannot listen on {host}:{port}: {e.strerror or e} (another server on that port? try another --port)"
        ) from None
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401 - (the serve extra: checked before the model loads)

        import seq2seq.serve.app  # noqa: F401
        from seq2seq.serve.service import Service
        from seq2seq.serve.settings import ServeSettings
    except ImportError as e:
        raise Seq2SeqError(
            f"seq2seq serve needs the serve extra ({e.name} is missing): pip install 'seq2seq[serve]'"
        ) from None
    key = args.api_key or os.environ.get("SEQ2SEQ_API_KEY") or None
    if not is_local(args.host) and not key and not args.no_api_key:
        raise Seq2SeqError(
            f"--host {args.host} can be reached from other machines: set an API key "
            "(SEQ2SEQ_API_KEY or --api-key), or pass --no-api-key to serve without one"
        )
    if not 0 <= args.port <= 65535:
        raise Seq2SeqError(f"--port must be between 0 and 65535, got {args.port}")
    if args.quantize and args.precision != "fp32":
        raise Seq2SeqError(f"--quantize {args.quantize} cannot be combined with --precision {args.precision}")
    settings = ServeSettings(
        workers=args.workers,
        batch_wait_ms=args.batch_wait_ms,
        max_batch_texts=args.max_batch_texts,
        max_queue_texts=args.max_queue_texts,
        max_texts=args.max_texts,
        max_text_chars=args.max_text_chars,
        max_body_bytes=args.max_body_bytes,
        request_timeout_s=args.request_timeout_s,
        max_beam=args.max_beam,
        api_key=key,
    )
    settings.check()
    if saved_config(args.checkpoint).model.encoder in ("cnn", "mlp"):  # docs/images.md
        raise Seq2SeqError(
            f"{args.checkpoint} reads images or vectors, which seq2seq serve does not take (it serves text): use "
            "seq2seq translate --input FILE.npy (or encode, reconstruct, score)"
        )
    search = decoding_settings(args)
    with checkpoint_errors(args.checkpoint):
        try:
            service = Service.from_checkpoint(
                args.checkpoint, device=args.device, search=search, quantize=args.quantize, precision=args.precision
            )
        except ValueError as e:
            raise Seq2SeqError(f"--quantize/--precision: {e}") from None
    pool = _start_workers(args, service, search) if args.workers > 1 else None
    try:
        return _run_server(args, service, settings, pool)
    finally:
        if pool is not None:
            pool.close()


def _start_workers(args: argparse.Namespace, service: Any, search: Any) -> Any:
    """``--workers N`` (N > 1): N decoding processes on this machine's CPU (serve.workers)."""
    from seq2seq.serve.workers import WorkerPool, WorkerSpec, default_threads

    if service.model.device.type != "cpu":
        raise Seq2SeqError(
            f"--workers {args.workers} is for decoding on CPU cores; on {service.model.device} one process batches "
            "better: drop --workers"
        )
    threads = args.threads or default_threads(args.workers)
    spec = WorkerSpec(str(args.checkpoint), "cpu", search, args.quantize, args.precision, threads)
    pool = WorkerPool(spec, args.workers, pin=args.pin_workers)
    service.describe.update(workers=args.workers, threads_per_worker=threads, pinned=pool.pinned)
    cores = ", each kept to its own core(s)" if pool.pinned else ""
    print(f"seq2seq: starting {args.workers} decoding workers, {threads} thread(s) each{cores}", file=sys.stderr)
    pool.start()
    return pool


def _run_server(args: argparse.Namespace, service: Any, settings: Any, pool: Any) -> int:
    """Listen and serve until SIGTERM or Ctrl-C; 0 once the open requests are answered."""
    import uvicorn

    from seq2seq.serve.app import create_app

    app = create_app(service, settings, run=pool.runners() if pool is not None else None)
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"seq2seq: serving {args.checkpoint} ({service.task}: {', '.join('/' + o for o in service.operations)}) "
        f"on http://{shown}:{port}/",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        app,
        log_level="debug" if args.verbose else "info",
        access_log=args.access_log,
        timeout_graceful_shutdown=args.request_timeout_s + 5,
        lifespan="on",
    )
    logging.getLogger("seq2seq.serve").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    # uvicorn answers SIGTERM and SIGINT by stopping to accept, finishing the open requests and the
    # lifespan (the queue), then raising the signal again for the handler that was there before.
    # SIGTERM is the ordinary way to stop a service: with this handler the process exits 0 then.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    print("seq2seq: server stopped", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``serve``."""
    from seq2seq.serve.settings import ServeSettings

    d = ServeSettings()
    p = sub.add_parser(
        "serve",
        help="HTTP API and a page to try a checkpoint (needs seq2seq[serve])",
        description="Serve a checkpoint over HTTP: POST /translate (translation models), /encode, /reconstruct, "
        "/score, /classify (autoencoders and classifiers), GET /health, /info, and a page at /. "
        "Concurrent requests are decoded together. Stop with SIGTERM or Ctrl-C: open requests are "
        "answered first. See docs/serving.md.",
    )
    add_decoding_flags(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; other addresses need an API key)",
    )
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port, printed)")
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="require this key in the X-API-Key header (better: the SEQ2SEQ_API_KEY environment variable, "
        "which other users cannot read from the process list)",
    )
    p.add_argument(
        "--no-api-key",
        action="store_true",
        help="serve an address other than localhost without an API key (anyone who reaches it may use it)",
    )
    p.add_argument(
        "--quantize",
        choices=["int8", "int8-rows"],
        default=None,
        help="int8 decoding on CPU (translation models); int8-rows: a text's output does not depend "
        "on the texts batched with it (docs/serving.md)",
    )
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="weights in this type")
    add_device_flag(p)

    def setting(flag: str, name: str, kind: type, help: str, metavar: str = "N") -> None:
        default = getattr(d, name)
        p.add_argument(
            flag,
            dest=name,
            type=kind,
            default=default,
            metavar=metavar,
            help=f"{help} (default {default:g})" if kind is float else f"{help} (default {default})",
        )

    setting(
        "--workers",
        "workers",
        int,
        "decoding processes on CPU, each decoding batches of its own with --threads threads (default threads: "
        "the cores divided among them); 2 or more use several cores better than threads do. Each loads the model",
    )
    setting(
        "--batch-wait-ms",
        "batch_wait_ms",
        float,
        "milliseconds a request waits for others to join its batch (0: batch only what is already queued)",
        "MS",
    )
    setting(
        "--max-batch-texts",
        "max_batch_texts",
        int,
        "texts decoded together at most, by each worker (0: one decoding batch, search.batch_rows / beam)",
    )
    setting("--max-queue-texts", "max_queue_texts", int, "texts that may wait; more are answered 503")
    setting("--max-texts", "max_texts", int, "texts per request; more are answered 413")
    setting("--max-text-chars", "max_text_chars", int, "characters per text; more are answered 413")
    setting("--max-body-bytes", "max_body_bytes", int, "request body size; more is answered 413", "BYTES")
    setting(
        "--request-timeout", "request_timeout_s", float, "seconds a request may wait for its answer (504)", "SECONDS"
    )
    setting("--max-beam", "max_beam", int, "the largest beam a request may ask for")
    p.add_argument(
        "--no-pin-workers",
        dest="pin_workers",
        action="store_false",
        help="let the workers of --workers N move between cores (by default each keeps to cores of its own when "
        "N x threads is the number of cores this process may use; taskset gives a server its cores)",
    )
    p.add_argument("--no-access-log", dest="access_log", action="store_false", help="no line per request in the log")
    p.set_defaults(func=cmd_serve)
