import numpy as np
import pytest

from pipeline import LABELS, TOPICS
from pipeline.calibration import (
    FITTERS,
    answer_labels,
    apply,
    choose_calibration,
    choose_thresholds,
    expected_calibration_error,
)


def overconfident(n=4000, seed=0):
    """4-class data that is right ~78% of the time but claims ~93%."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    predicted = np.where(rng.random(n) < 0.7, y, rng.integers(0, 4, n))
    logits = rng.normal(0, 0.3, (n, 4))
    logits[np.arange(n), predicted] += 4.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return proba, y


def test_ece_is_zero_for_honest_scores_and_large_for_overconfident():
    proba, y = overconfident()
    assert expected_calibration_error(proba, y) > 0.1  # ~78% right, ~93% claimed
    honest = np.eye(4)[y]  # always right, always certain
    assert expected_calibration_error(honest, y) == pytest.approx(0.0)


@pytest.mark.parametrize("method", list(FITTERS))
def test_each_method_reduces_ece_and_keeps_rows_normalised(method):
    proba, y = overconfident()
    calibration = FITTERS[method](proba[:2000], y[:2000])
    calibrated = apply(calibration, proba[2000:])
    assert np.allclose(calibrated.sum(axis=1), 1)
    assert expected_calibration_error(calibrated, y[2000:]) < expected_calibration_error(proba[2000:], y[2000:]) / 2


def test_choice_is_measured_and_no_calibration_is_identity():
    proba, y = overconfident()
    calibration, scores = choose_calibration(proba, y, seed=1)
    assert set(scores) == {"none", *FITTERS} and calibration["method"] == min(FITTERS, key=scores.get)
    assert apply(None, proba) is proba


def test_decide_abstains_below_threshold_and_when_other_wins():
    labels = LABELS  # topics + other
    assert answer_labels(np.array([0.5, 0.2, 0.1, 0.1, 0.1]), labels, threshold=0.4) == ["politics"]
    assert answer_labels(np.array([0.3, 0.2, 0.2, 0.2, 0.1]), labels, threshold=0.4) == ["other"]
    assert answer_labels(np.array([0.2, 0.1, 0.1, 0.1, 0.5]), labels, threshold=0.1) == ["other"]
    assert answer_labels(np.array([0.2, 0.1, 0.1, 0.1, 0.5]), labels, threshold=0.1, abstain=False) == ["politics"]
    assert answer_labels(np.array([0.2, 0.1, 0.1, 0.1, 0.5]), labels, threshold=0.1, other_threshold=0.6) == ["politics"]


def test_threshold_keeps_the_configured_coverage():
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(4), 1000)
    y = [TOPICS[i] for i in rng.integers(0, 4, 1000)]
    threshold, other = choose_thresholds(proba, TOPICS, y, coverage=0.9)
    kept = (proba.max(axis=1) >= threshold).mean()
    assert 0.89 <= kept <= 0.91 and other == 0.0
    assert choose_thresholds(proba, TOPICS, y, coverage=1.0) == (0.0, 0.0)


def test_learned_other_is_gated_when_it_alone_would_break_the_coverage():
    rng = np.random.default_rng(4)
    proba = rng.dirichlet(np.ones(5), 1000)  # the learned `other` class wins on about a fifth of the rows
    y = [TOPICS[i] for i in rng.integers(0, 4, 1000)]
    threshold, other = choose_thresholds(proba, LABELS, y, coverage=0.95)
    answers = answer_labels(proba, LABELS, threshold, other_threshold=other)
    kept = np.mean([a != "other" for a in answers])
    assert other > 0 and threshold == 0.0 and 0.945 <= kept <= 0.955
    # the `other` answers left are the most confident ones
    p_other = proba[:, 4]
    assert min(p_other[i] for i, a in enumerate(answers) if a == "other") >= other
