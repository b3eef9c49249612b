"""Load on ``seq2seq serve``: N concurrent clients, each sending one sentence per request
(``--per-request K``: K sentences).

Prints figures; it is not a test. For each server setting (batching with the default wait, wait
0, and no batching at all: one request per decoding call) a server is started on localhost
(``python -m seq2seq serve --port 0``), and for each client count the same sentences are sent,
every client sending its next request when the previous one is answered. Then:

* requests/s, sentences/s and p50/p95/p99 latency;
* the same sentences through ``Translator.translate`` in one process (offline), for comparison;
* an overload phase: many more clients than the queue holds (``--max-queue-texts``), where 503s
  are answers and every request must get one (a request with no answer counts as lost).

Bounded: at most ``--requests`` sentences per run and ``--max-seconds`` per run; localhost only.

    python benchmarks/serve_load.py --checkpoint runs/NAME/best --src test2016.de --quantize int8 \\
        --clients 1 8 32 128 --requests 1000

Decoding settings (``--beam``, ``--max-len-a``, ``--max-len-b``) go to the server and to the
offline run alike; ``--force-len N`` forces every output to N tokens, as the other decoding
benchmarks here do with untrained models. An untrained model rarely ends a sentence on its own,
so ``--max-len-a 1.2 --max-len-b 2`` (without ``--force-len``) gives outputs as long as that
share of each source: lengths that vary, as a trained model's do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import httpx


def start_server(
    args: argparse.Namespace,
    wait_ms: float,
    max_batch_texts: int,
    max_queue: Optional[int] = None,
    workers: int = 1,
    pin: bool = True,
) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable,
        "-m",
        "seq2seq",
        "serve",
        "--checkpoint",
        args.checkpoint,
        "--port",
        "0",
        "--device",
        "cpu",
        "--no-access-log",
        "--batch-wait-ms",
        str(wait_ms),
        "--max-batch-texts",
        str(max_batch_texts),
        "--workers",
        str(workers),
        *decoding_flags(args),
    ]
    if args.quantize:
        cmd += ["--quantize", args.quantize]
    if max_queue:
        cmd += ["--max-queue-texts", str(max_queue), "--max-texts", "1"]
    if not pin:
        cmd.append("--no-pin-workers")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        found = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
        if found:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # drain the log
            url = found.group(1)
            for _ in range(600):
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        return proc, url
                except httpx.TransportError:
                    time.sleep(0.1)
            break
    proc.kill()
    raise SystemExit("the server did not start")


def parse_mode(mode: str) -> tuple[float, int, int, bool]:
    """``off`` | ``waitMS`` | ``waitMSxN`` | ``waitMSxNfree`` -> (batch wait ms, --max-batch-texts,
    --workers, whether the workers keep to cores of their own: not with ``free``)."""
    found = re.fullmatch(r"wait(\d+(?:\.\d+)?)(?:x(\d+)(free)?)?", mode)
    if mode == "off":
        return 0.0, 1, 1, True
    if not found:
        raise SystemExit(f"--modes: {mode!r} is not off, waitMS, waitMSxWORKERS or waitMSxWORKERSfree (e.g. wait20x2)")
    return float(found.group(1)), 0, int(found.group(2) or 1), not found.group(3)


def decoding_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--beam", str(args.beam)]
    if args.threads:
        flags += ["--threads", str(args.threads)]
    if args.force_len:
        flags += ["--min-len", str(args.force_len), "--max-len-a", "0", "--max-len-b", str(args.force_len)]
    else:
        flags += [f"--{name}={value}" for name, value in length_flags(args)]
    return flags


def length_flags(args: argparse.Namespace) -> list[tuple[str, float]]:
    """(flag name, value) of the --max-len-a / --max-len-b given."""
    given = [("max-len-a", args.max_len_a), ("max-len-b", args.max_len_b)]
    return [(name, value) for name, value in given if value is not None]


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON: a load generator light on CPU.

    The clients share the server's 2 cores here; httpx spent about 4 ms of CPU a request (measured:
    640 GETs of /health cost the server 0.43 s and httpx about 3 s), time the server's decoding
    then lacks. Real clients run elsewhere, so the load generator should cost as little as it can.
    """

    def __init__(self, url: str) -> None:
        host_port = url.split("://", 1)[1]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None

    async def post(self, path: str, body: dict) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        try:
            self.writer.write(head.encode() + data)
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionError("the server closed the connection")
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and "close" in value.lower():
                    close = True
            payload = await self.reader.readexactly(length)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            await self.close()
            raise
        if close:
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def load(
    url: str, sentences: list[str], clients: int, max_seconds: float, per_request: int = 1
) -> dict[str, float]:
    """``clients`` tasks, each sending ``per_request`` sentences a request until all are sent or
    time is up."""
    todo = list(reversed(sentences))
    translated = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    problems: dict[str, int] = {}  # what the lost and other answers were
    lost = 0
    stop = time.monotonic() + max_seconds

    async def one_client() -> None:
        nonlocal lost, translated
        connection = Connection(url)
        try:
            while todo and time.monotonic() < stop:
                texts = [todo.pop() for _ in range(min(per_request, len(todo)))]
                started = time.perf_counter()
                try:
                    status, payload = await asyncio.wait_for(connection.post("/translate", {"texts": texts}), 120)
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
                    lost += 1
                    problems[type(e).__name__] = problems.get(type(e).__name__, 0) + 1
                    await connection.close()
                    continue
                statuses[status] = statuses.get(status, 0) + 1
                if status not in (200, 503):
                    what = f"{status} {payload[:80].decode(errors='replace')}"
                    problems[what] = problems.get(what, 0) + 1
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                    translated += len(texts)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else float("nan")

    return {
        "clients": clients,
        "ok": statuses.get(200, 0),
        "503": statuses.get(503, 0),
        "other": sum(n for s, n in statuses.items() if s not in (200, 503)),
        "lost": lost,
        "rps": statuses.get(200, 0) / elapsed,
        "sps": translated / elapsed,  # sentences translated per second
        "sentences": translated,
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "problems": problems,
    }


def process_tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by process ``pid`` and by all its descendants,
    from /proc (Linux; (nan, nan) elsewhere). Descendants that have exited are not counted."""
    tick = os.sysconf("SC_CLK_TCK")

    def own(p: int) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    def children(p: int) -> list[int]:
        found = []
        for task in Path(f"/proc/{p}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
        return found

    try:
        main_cpu, rest, todo = own(pid), 0.0, children(pid)
        while todo:
            child = todo.pop()
            with contextlib.suppress(OSError):
                rest += own(child)
                todo += children(child)
        return main_cpu, rest
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")


def measure(
    proc: subprocess.Popen, url: str, sentences: list[str], clients: int, max_seconds: float, per_request: int = 1
) -> tuple[dict, list[float], float]:
    """One load run -> (load's figures, CPU ms per translated sentence [server, its workers, these
    clients], mean texts per batch)."""
    before = httpx.get(url + "/health", timeout=10).json()
    cpu_before, client_before = process_tree_cpu(proc.pid), time.process_time()
    r = asyncio.run(load(url, sentences, clients, max_seconds, per_request))
    cpu_after, client_after = process_tree_cpu(proc.pid), time.process_time()
    after = httpx.get(url + "/health", timeout=10).json()
    # The server's own process does HTTP and batching (and the decoding, without --workers); its
    # workers decode; the clients are this process.
    done = max(1, r["sentences"])
    cpu = [(b - a) * 1e3 / done for a, b in zip(cpu_before, cpu_after)]
    cpu.append((client_after - client_before) * 1e3 / done)
    mean_batch = (after["texts"] - before["texts"]) / max(1, after["batches"] - before["batches"])
    return r, cpu, mean_batch


def offline(args: argparse.Namespace, sentences: list[str]) -> float:
    """Sentences/s of one ``Translator.translate`` call on the same sentences, in its own process
    (``decode_batch_sizes.py`` with one batch of all of them; model load excluded)."""
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("decode_batch_sizes.py")),
        *("--checkpoint", args.checkpoint, "--src", args.src, "--sentences", str(len(sentences))),
        *("--batches", str(len(sentences)), "--beam", str(args.beam), "--threads", str(args.threads or 0)),
        *(["--quantize", args.quantize] if args.quantize else []),
        *(["--force-len", str(args.force_len)] if args.force_len else []),
        *(f"--{name}={value}" for name, value in length_flags(args)),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        # The child's own message (e.g. "no checkpoint in DIR") says what to fix; its traceback does not.
        sys.exit(f"offline run failed (--checkpoint {args.checkpoint}):\n{out.stderr.strip().splitlines()[-1]}")
    return float(out.stdout.strip().splitlines()[-1].split("|")[2])  # the table row "| batch | sent/s | ms |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--src", required=True, help="one sentence per line (e.g. test2016.de)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--requests", type=int, default=1000, help="sentences per run (at most the file's lines)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="a run stops sending after this")
    p.add_argument("--quantize", choices=["int8", "int8-rows"], default=None)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--force-len", type=int, default=0, help="force every output to N tokens (0: free)")
    p.add_argument("--max-len-a", type=float, default=None, help="outputs at most A x source tokens + B")
    p.add_argument("--max-len-b", type=int, default=None, help="(default: the checkpoint's A and B)")
    p.add_argument("--threads", type=int, default=0, help="--threads for the server and the offline run (0: default)")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["wait20", "wait20x2", "off"],
        help="server settings: waitMS (batching, that wait), waitMSxN (the same with --workers N, pinned to "
        "their own cores where they use all of them), waitMSxNfree (workers free to move between cores), "
        "off (one request per decoding call)",
    )
    p.add_argument("--per-request", type=int, default=1, help="sentences in each request (1: one, as most clients)")
    p.add_argument(
        "--rounds", type=int, default=1, help="measure every client count this often, offline again each round"
    )
    p.add_argument("--overload-clients", type=int, default=256, help="0: no overload phase")
    p.add_argument("--overload-queue", type=int, default=32, help="--max-queue-texts in the overload phase")
    args = p.parse_args()
    for flag in ("per_request", "rounds"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    sentences = [s for s in Path(args.src).read_text(encoding="utf-8").splitlines() if s.strip()][: args.requests]
    forced = f"; outputs forced to {args.force_len} tokens" if args.force_len else ""
    forced += "".join(f"; {name} {value:g}" for name, value in length_flags(args))
    print(
        f"# {len(sentences)} sentences from {args.src}; checkpoint {args.checkpoint}; beam {args.beam}"
        f"{'; ' + args.quantize if args.quantize else ''}{forced}; {os.cpu_count()} CPUs; "
        f"threads {args.threads or 'default'}",
        flush=True,
    )
    print(
        "| server | round | clients | requests/s | sentences/s | x 1 client | offline/s | x offline | p50 ms | p95 ms "
        "| p99 ms | 503 | lost | texts/batch (each worker's) | CPU ms/sentence: server / workers / clients |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    ratios: dict[tuple[str, int], list[float]] = {}
    for mode in args.modes:
        wait, cap, workers, pin = parse_mode(mode)
        proc, url = start_server(args, wait, cap, workers=workers, pin=pin)
        try:
            for round_ in range(1, args.rounds + 1):
                # Offline is measured again in every round, just before that round's clients: on a
                # shared machine the speed drifts by tens of percent within minutes, and a ratio
                # between figures measured far apart would mostly measure that drift.
                rate = offline(args, sentences)
                single = None
                for clients in args.clients:
                    r, cpu, mean_batch = measure(proc, url, sentences, clients, args.max_seconds, args.per_request)
                    single = single or r["sps"]
                    ratios.setdefault((mode, clients), []).append(r["sps"] / rate)
                    cells = [mode, round_, clients, f"{r['rps']:.1f}", f"{r['sps']:.1f}", f"{r['sps'] / single:.2f}"]
                    cells += [f"{rate:.1f}", f"{r['sps'] / rate:.2f}"]
                    cells += [f"{r[p] * 1e3:.0f}" for p in ("p50", "p95", "p99")]
                    cells += [r["503"], r["lost"] + r["other"], f"{mean_batch:.1f}"]
                    cells.append(" / ".join(f"{c:.1f}" for c in cpu))
                    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
                    if r["problems"]:
                        print(f"<!-- {mode}, {clients} clients: {r['problems']} -->", flush=True)
        finally:
            proc.terminate()
            proc.wait(60)
    if args.rounds > 1:
        print("\nx offline over the rounds: median (lowest - highest)")
        for (mode, clients), values in ratios.items():
            print(
                f"- {mode}, {clients} clients: {statistics.median(values):.2f} ({min(values):.2f} - {max(values):.2f})"
            )
    if args.overload_clients:
        workers = max(parse_mode(mode)[2] for mode in args.modes)
        proc, url = start_server(args, 20.0, 0, max_queue=args.overload_queue, workers=workers)
        try:
            r = asyncio.run(load(url, sentences, args.overload_clients, args.max_seconds))
        finally:
            proc.terminate()
            code = proc.wait(60)
        answered = r["ok"] + r["503"] + r["other"]
        print(
            f"\noverload: {args.overload_clients} clients, queue of {args.overload_queue} texts: {answered} requests "
            f"answered ({r['ok']} x 200, {r['503']} x 503 with Retry-After, {r['other']} other), {r['lost']} lost; "
            f"{r['rps']:.1f} translated/s, p99 of the 200s {r['p99'] * 1e3:.0f} ms; server exit status {code} "
            "after SIGTERM",
            flush=True,
        )


if __name__ == "__main__":
    main()
