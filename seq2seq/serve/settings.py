"""The server's limits and batching settings, apart from the HTTP stack (the CLI reads their
defaults without the serve extra installed)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from seq2seq.errors import Seq2SeqError

__all__ = ["ServeSettings"]


@dataclass
class ServeSettings:
    """The server's limits and batching settings (``seq2seq serve`` has one flag for each)."""

    workers: int = 1  # decoding processes, each taking batches of its own (see serve.batcher, serve.workers)
    batch_wait_ms: float = 20.0  # how long a batch waits for the clients it expects (see serve.batcher)
    max_batch_texts: int = 0  # texts merged into one batch (0: search.batch_rows // beam)
    max_queue_texts: int = 1024  # texts that may wait at once; more -> 503 with Retry-After
    max_texts: int = 128  # texts in one request; more -> 413
    max_text_chars: int = 5000  # characters in one text; more -> 413
    max_body_bytes: int = 1 << 20  # request body; more -> 413
    request_timeout_s: float = 60.0  # waiting (queue + decoding) past this -> 504
    max_beam: int = 32  # the largest beam a request may ask for
    api_key: Optional[str] = None  # when set, every route but / and /health needs it

    def check(self) -> None:
        """Raise Seq2SeqError naming the setting (as its flag) that is out of range."""
        rules = [
            ("--workers", self.workers >= 1, ">= 1"),
            ("--batch-wait-ms", self.batch_wait_ms >= 0 and math.isfinite(self.batch_wait_ms), ">= 0"),
            ("--max-batch-texts", self.max_batch_texts >= 0, ">= 0"),
            ("--max-queue-texts", self.max_queue_texts >= 1, ">= 1"),
            ("--max-texts", self.max_texts >= 1, ">= 1"),
            ("--max-text-chars", self.max_text_chars >= 1, ">= 1"),
            ("--max-body-bytes", self.max_body_bytes >= 64, ">= 64"),
            ("--request-timeout", self.request_timeout_s > 0 and math.isfinite(self.request_timeout_s), "> 0"),
            ("--max-beam", self.max_beam >= 1, ">= 1"),
        ]
        for flag, ok, rule in rules:
            if not ok:
                raise Seq2SeqError(f"{flag} must be {rule}")
        if self.max_texts > self.max_queue_texts:
            raise Seq2SeqError(
                f"--max-texts ({self.max_texts}) cannot exceed --max-queue-texts "
                f"({self.max_queue_texts}): such a request could never be queued"
            )
