"""The ``seq2seq`` command. Thin: it parses flags, reads/writes files and calls the library.

One module per command family, each with its commands' ``cmd_*`` bodies next to the
``add_parsers`` that declares their flags: :mod:`~seq2seq.cli.train` (train, pretrain,
classify-train), :mod:`~seq2seq.cli.prepare` (prepare), :mod:`~seq2seq.cli.translate`
(translate), :mod:`~seq2seq.cli.evaluate` (evaluate), :mod:`~seq2seq.cli.checkpoints` (average,
plot, join), :mod:`~seq2seq.cli.encode` (reconstruct, encode, score, hash, search, sample,
classify), :mod:`~seq2seq.cli.serve` (serve). What they share: :mod:`~seq2seq.cli.io` (checkpoint
errors, a checkpoint's saved config, the common flags), :mod:`~seq2seq.cli.inputs` (input lines,
at once or in windows), :mod:`~seq2seq.cli.output` (atomic and resumable outputs),
:mod:`~seq2seq.cli.decoding` (the decoding flags made from :class:`~seq2seq.config.SearchConfig`,
loading a translator) and :mod:`~seq2seq.cli.shards` (``translate --shard``);
:mod:`~seq2seq.cli.main` holds the parser and the error net. A new command is a ``cmd_*``
function and its parser in one of the families, or a new module with an ``add_parsers(sub)``
whose name is added to ``main.FAMILIES``.

User errors (bad files, configs, checkpoints, option values) print one line,
``seq2seq: error: ...``, and exit with status 2; an unexpected exception (a bug) prints one line
too and exits with 1 (``-v`` shows the traceback); Ctrl-C exits with 130. Output files are
written to a temporary name and renamed when complete, so a failed or interrupted run never
leaves a half-written output. Per-line commands (translate, reconstruct, encode, score,
classify) give exactly one output line (or row) per input line, in order.
"""

from seq2seq.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
