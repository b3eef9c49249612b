"""`python -m joeynmt translate CONFIG` with JoeyNMT 2.3.0's `testing.min_output_length` actually applied.

Written for the peer benchmarks (not in the shared peer scripts; not JoeyNMT code). In JoeyNMT 2.3.0,
`prediction.predict()` reads `min_output_length` from the config (and logs it) but does not pass it on to
`search.search()`, whose greedy and beam searches then fall back to their default of 1 (EOS is only forbidden
at the first step), so the configured minimum is silently ignored. This wrapper passes the parsed value through
(the search functions already implement it) and then runs JoeyNMT's own command line unchanged.
usage: python joey_translate.py translate CONFIG < input > hypotheses
"""

import functools

import joeynmt.prediction as prediction
from joeynmt.__main__ import main

_predict, _search = prediction.predict, prediction.search


def _predict_with_min_length(*args, **kwargs):
    test_args = kwargs.get("args")
    if test_args is None:  # predict(model, data, device, n_gpu, rank, compute_loss, normalization, num_workers, args)
        test_args = args[8]
    prediction.search = functools.partial(_search, min_output_length=test_args.min_output_length)
    try:
        return _predict(*args, **kwargs)
    finally:
        prediction.search = _search


prediction.predict = _predict_with_min_length

if __name__ == "__main__":
    main()
