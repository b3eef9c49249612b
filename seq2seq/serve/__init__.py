"""``seq2seq serve``: an HTTP API over a checkpoint, with batching across requests and a page to
try the model (``pip install seq2seq[serve]``: Starlette and uvicorn).

* :mod:`seq2seq.serve.service`: the model side: what a checkpoint's task can do, on a list of texts;
* :mod:`seq2seq.serve.batcher`: concurrent requests queued and decoded together, one thread per decoder;
* :mod:`seq2seq.serve.workers`: ``--workers N`` decoding processes, each taking batches of its own;
* :mod:`seq2seq.serve.app`: the Starlette app: routes, request checks, limits, the API key;
* ``page.html``: the page at ``GET /`` (one file, no external assets).

docs/serving.md describes the endpoints, the limits and the behaviour under load.
"""
