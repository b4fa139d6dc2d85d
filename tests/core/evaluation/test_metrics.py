import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.evaluation.metrics import catalogue_coverage, mae, ranking_metrics, rmse


def test_rmse_mae_by_hand():
    assert rmse(np.array([1.0, 3.0]), np.array([2.0, 5.0])) == pytest.approx(math.sqrt((1 + 4) / 2))
    assert mae(np.array([1.0, 3.0]), np.array([2.0, 5.0])) == pytest.approx(1.5)


def test_ranking_metrics_by_hand():
    # user 0: relevant {1, 4}; list [1, 2, 4] -> hits at ranks 1 and 3
    # user 1: relevant {0};    list [3, 2, 1] -> no hit
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 0, 1], [1, 0, 0, 0, 0]], dtype=np.float32))
    top = np.array([[1, 2, 4], [3, 2, 1]])
    m = ranking_metrics(top, np.array([0, 1]), relevant, k=3)
    assert m["precision_at_k"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall_at_k"] == pytest.approx((2 / 2 + 0) / 2)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg_at_k"] == pytest.approx((dcg / idcg + 0) / 2)
    ap = (1 / 1 + 2 / 3) / 2
    assert m["map_at_k"] == pytest.approx((ap + 0) / 2)


def test_users_without_test_items_are_skipped_and_padding_ignored():
    relevant = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]], dtype=np.float32))
    top = np.array([[0, -1], [1, 2]])
    m = ranking_metrics(top, np.array([0, 1]), relevant, k=2)
    assert m["precision_at_k"] == pytest.approx(0.5)
    assert m["ndcg_at_k"] == pytest.approx(1.0)


def test_coverage():
    assert catalogue_coverage(np.array([[0, 1], [1, -1]]), 4) == pytest.approx(0.5)
