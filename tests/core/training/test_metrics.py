"""The numpy scores agree with scikit-learn's, whose definitions they follow (scikit-learn
is the reference here; the product no longer imports it to evaluate)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm

from lepton_desktop.core.training import metrics

_labels = st.integers(min_value=1, max_value=6).flatmap(
    lambda k: st.integers(min_value=1, max_value=60).flatmap(
        lambda n: st.tuples(
            st.just(k),
            hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)),
            hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)),
        )
    )
)
_values = st.floats(-1e3, 1e3, allow_nan=False, width=32)
_pairs = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(hnp.arrays(np.float64, n, elements=_values),
                        hnp.arrays(np.float64, n, elements=_values))
)  # fmt: skip


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # k = 1
@settings(max_examples=200, deadline=None)
@given(_labels)
def test_classification_scores_match_scikit_learn(
    case: tuple[int, np.ndarray, np.ndarray],
) -> None:
    k, y, pred = case
    labels = list(range(k))
    precision, recall, f1, support = metrics.precision_recall_f1_support(y, pred, k)
    expected = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for ours, theirs in zip((precision, recall, f1, support), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert metrics.accuracy(y, pred) == skm.accuracy_score(y, pred)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y, pred, k), skm.confusion_matrix(y, pred, labels=labels)
    )


@settings(max_examples=200, deadline=None)
@given(_pairs)
def test_regression_scores_match_scikit_learn(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, pred = case
    assert metrics.mean_squared_error(y, pred) == pytest.approx(
        skm.mean_squared_error(y, pred), rel=1e-12, abs=1e-12
    )
    assert metrics.mean_absolute_error(y, pred) == pytest.approx(
        skm.mean_absolute_error(y, pred), rel=1e-12, abs=1e-12
    )
    if len(y) < 2:
        assert math.isnan(metrics.r2(y, pred))  # scikit-learn: nan, with a warning
        return
    assert metrics.r2(y, pred) == pytest.approx(skm.r2_score(y, pred), rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=2, max_value=80).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.int64, n, elements=st.integers(0, 1)),
            # few distinct scores, so that ties between classes are common
            hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
        )
    )
)
def test_roc_auc_matches_scikit_learn_ties_included(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = case
    if len(np.unique(y)) < 2:
        with pytest.raises(ValueError, match="both classes"):
            metrics.roc_auc(y, score)
        return
    assert metrics.roc_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)


def test_edge_cases_score_as_scikit_learn_scores_them() -> None:
    # A class never predicted and never present: precision, recall and F1 are 0, not NaN.
    precision, recall, f1, support = metrics.precision_recall_f1_support(
        np.array([0, 0, 1]), np.array([0, 1, 1]), 3
    )
    assert precision.tolist() == [1.0, 0.5, 0.0] and recall.tolist() == [0.5, 1.0, 0.0]
    assert f1[2] == 0.0 and support.tolist() == [2, 1, 0]
    # A constant target: R2 is 1 for an exact prediction, else 0 (no division by zero).
    assert metrics.r2(np.ones(5), np.ones(5)) == skm.r2_score(np.ones(5), np.ones(5)) == 1.0
    assert metrics.r2(np.ones(5), np.zeros(5)) == skm.r2_score(np.ones(5), np.zeros(5)) == 0.0
    # Labels outside 0..k-1 are left out of the matrix, as with scikit-learn's labels=.
    y, pred = np.array([0, 1, 2, 3]), np.array([0, 1, 3, 2])
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y, pred, 3), skm.confusion_matrix(y, pred, labels=[0, 1, 2])
    )
