"""The metric code of recipes/autoencoder/retrieval.py on hand-made rankings with known answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "recipes" / "autoencoder" / "retrieval.py"
_spec = importlib.util.spec_from_file_location("retrieval_recipe", _PATH)
retrieval = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(retrieval)


def test_precision_and_ap_without_ties():
    # One query, 6 candidates ranked by distance 0..5; relevant at ranks 1, 3 and 6.
    dist = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    rel = np.array([[True, False, True, False, False, True]])
    p, ap = retrieval.precision_and_ap(dist, rel, 4, np.random.default_rng(0))
    assert p[0] == pytest.approx(2 / 4)
    assert ap[0] == pytest.approx((1 / 1 + 2 / 3 + 3 / 6) / 3)


def test_order_comes_from_distance_not_position():
    # The same candidates listed in another order: same answer.
    dist = np.array([[5.0, 3.0, 0.0, 4.0, 1.0, 2.0]])
    rel = np.array([[True, False, True, False, False, True]])
    p, ap = retrieval.precision_and_ap(dist, rel, 2, np.random.default_rng(0))
    assert p[0] == pytest.approx(1 / 2)  # ranks: 2 (rel), 4, 5 (rel), 1, 3, 0 (rel)
    assert ap[0] == pytest.approx((1 / 1 + 2 / 3 + 3 / 6) / 3)


def test_ties_are_broken_at_random_with_the_right_expectation():
    # A tie of 1 relevant and 3 irrelevant candidates at distance 0, then 1 relevant alone.
    # Under random tie-breaking, the relevant one of the tie is at rank r = 1..4 with
    # probability 1/4 each: E[P@1] = 1/4, E[AP] = (E[1/r] + E[2/5]) / 2.
    dist = np.array([[0.0, 0.0, 0.0, 0.0, 1.0]])
    rel = np.array([[True, False, False, False, True]])
    rng = np.random.default_rng(123)
    runs = [retrieval.precision_and_ap(dist, rel, 1, rng) for _ in range(4000)]
    p1 = np.mean([p[0] for p, _ in runs])
    ap = np.mean([a[0] for _, a in runs])
    assert p1 == pytest.approx(0.25, abs=0.03)
    assert ap == pytest.approx((np.mean([1, 1 / 2, 1 / 3, 1 / 4]) + 2 / 5) / 2, abs=0.02)
    # The tie is not broken by position (which would always put the relevant one first).
    assert 0.15 < p1 < 0.35


def test_evaluate_with_all_codes_equal_is_chance_not_index_order():
    # 200 items in groups of 5 adjacent ones, every code identical: every candidate ties, and
    # the scores must be those of a random ranking (the query itself never counts).
    groups = np.repeat(np.arange(40), 5)
    codes = np.zeros((200, 16), dtype=bool)
    res = retrieval.evaluate(retrieval.hamming_matrix(codes, codes), groups, 4, seed=1, name="same")
    assert res["precision@4"] < 10.0  # chance: 4 / 199 = 2%


def test_evaluate_perfect_codes_and_self_exclusion():
    groups = np.repeat(np.arange(30), 5)
    codes = ((groups[:, None] >> np.arange(8)) & 1).astype(bool)  # one code per group
    res = retrieval.evaluate(retrieval.hamming_matrix(codes, codes), groups, 4, seed=1, name="perfect", chunk=7)
    assert res["precision@4"] == pytest.approx(100.0)
    assert res["mAP"] == pytest.approx(100.0)


def test_hamming_and_cosine_matrices():
    a = np.array([[0, 0, 1, 1], [1, 1, 1, 1]], dtype=bool)
    assert retrieval.hamming_matrix(a, a).tolist() == [[0, 2], [2, 0]]
    v = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    d = retrieval.cosine_distance_matrix(v, v)
    assert d[0, 1] == pytest.approx(1.0)
    assert d[0, 2] == pytest.approx(1 - 1 / np.sqrt(2))
