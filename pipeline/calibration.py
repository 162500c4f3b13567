"""Calibrated confidence and abstaining ("other") for every model kind.

Temperature scaling, isotonic regression and Platt scaling (per class, renormalised) are fitted on
held-out data; the lowest expected calibration error (ECE) on a second held-out half wins. The result
is plain numbers (model.json), applied with numpy alone so the predict path stays light. `answer_labels`
answers `other` when the learned `other` class wins or no topic is confident enough;
`choose_thresholds` sets both thresholds so a configured share of in-scope headlines keeps a topic.
"""

from collections.abc import Sequence

import numpy as np

from pipeline import OTHER, TOPICS

EPS = 1e-6


def reliability(proba: np.ndarray, y: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per confidence bin, for reliability diagrams."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            out.append((float(confidence[in_bin].mean()), float(correct[in_bin].mean()), int(in_bin.sum())))
    return out


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence: bin-size-weighted |accuracy - confidence|."""
    return float(sum(n / len(y) * abs(acc - conf) for conf, acc, n in reliability(proba, y, bins)))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits, numpy only (the predict path's models share it)."""
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def apply(calibration: dict | None, proba: np.ndarray) -> np.ndarray:
    """Calibrated probabilities (rows sum to 1); identity when there is no calibration."""
    if not calibration:
        return proba
    method = calibration["method"]
    if method == "temperature":
        out = softmax(np.log(np.clip(proba, EPS, 1)) / calibration["temperature"])
    elif method == "isotonic":
        out = np.column_stack([np.interp(proba[:, k], x, y) for k, (x, y) in enumerate(calibration["curves"])])
    elif method == "platt":
        logit = np.log(np.clip(proba, EPS, 1 - EPS) / np.clip(1 - proba, EPS, 1))
        a, b = np.array(calibration["a"]), np.array(calibration["b"])
        out = 1 / (1 + np.exp(-(a * logit + b)))
    else:
        raise ValueError(f"unknown calibration method {method!r}")
    out = np.clip(out, EPS, None)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> dict:
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    log_p = np.log(np.clip(proba, EPS, 1))

    def nll(log_t: float) -> float:
        return float(-log_softmax(log_p / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean())

    best = minimize_scalar(nll, bounds=(-3, 3), method="bounded")
    return {"method": "temperature", "temperature": float(np.exp(best.x))}


def fit_isotonic(proba: np.ndarray, y: np.ndarray) -> dict:
    from sklearn.isotonic import IsotonicRegression

    curves = []
    for k in range(proba.shape[1]):
        iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(proba[:, k], (y == k).astype(float))
        curves.append((iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()))
    return {"method": "isotonic", "curves": curves}


def fit_platt(proba: np.ndarray, y: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression

    logit = np.log(np.clip(proba, EPS, 1 - EPS) / np.clip(1 - proba, EPS, 1))
    a, b = [1.0] * proba.shape[1], [0.0] * proba.shape[1]  # identity: a class absent from the data stays as it is
    for k in range(proba.shape[1]):
        target = (y == k).astype(int)
        if target.min() < target.max():
            lr = LogisticRegression(C=1e4).fit(logit[:, [k]], target)
            a[k], b[k] = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return {"method": "platt", "a": a, "b": b}


FITTERS = {"temperature": fit_temperature, "isotonic": fit_isotonic, "platt": fit_platt}


def choose_calibration(proba: np.ndarray, y: np.ndarray, seed: int) -> tuple[dict, dict[str, float]]:
    """Fit each method on one half, score ECE on the other; refit the winner on all. Returns
    (calibration, ECE per method on the scoring half, 'none' included)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    fit_idx, score_idx = order[: len(y) // 2], order[len(y) // 2:]
    scores = {"none": expected_calibration_error(proba[score_idx], y[score_idx])}
    for name, fit in FITTERS.items():
        calibration = fit(proba[fit_idx], y[fit_idx])
        scores[name] = expected_calibration_error(apply(calibration, proba[score_idx]), y[score_idx])
    best = min(FITTERS, key=lambda name: scores[name])  # ties: dict order, simplest first
    return FITTERS[best](proba, y), scores


def answer_labels(proba: np.ndarray, labels: Sequence[str], threshold: float | None, abstain: bool = True,
                  other_threshold: float | None = None) -> list[str]:
    """The answer for each row of calibrated scores over `labels` (which may include `other`): `other` when
    the learned `other` class wins with at least `other_threshold`, or no topic reaches `threshold`; else the
    best topic. Vectorised: prediction decides whole batches."""
    proba = np.atleast_2d(proba)
    names = np.array(labels, dtype=object)
    topic_idx = np.array([i for i, label in enumerate(labels) if label != OTHER])
    best_topic = topic_idx[proba[:, topic_idx].argmax(axis=1)]
    if not abstain:
        return names[best_topic].tolist()
    rows = np.arange(len(proba))
    best = proba.argmax(axis=1)
    learned_other = (names[best] == OTHER) & (proba[rows, best] >= (other_threshold or 0.0))
    unsure = proba[rows, best_topic] < threshold if threshold is not None else np.zeros(len(proba), dtype=bool)
    return np.where(learned_other | unsure, OTHER, names[best_topic]).tolist()


def choose_thresholds(proba: np.ndarray, labels: Sequence[str], y_true: Sequence[str],
                      coverage: float) -> tuple[float, float]:
    """(topic threshold, other threshold) that keep a topic for `coverage` of the in-scope rows.

    The learned `other` class spends the budget of in-scope rows that may lose their topic first (it
    is the better judge of what is none of the four); if it alone would take more, `other` must win
    with at least the other threshold. Whatever budget is left goes to a threshold on the best topic."""
    in_scope = np.array([y in TOPICS for y in y_true])
    rows = proba[in_scope]
    allowed = int(np.floor((1 - coverage) * len(rows) + 1e-9))
    topic_idx = [i for i, label in enumerate(labels) if label != OTHER]
    other_threshold = 0.0
    learned_other = np.zeros(len(rows), dtype=bool)
    if OTHER in labels:
        k = list(labels).index(OTHER)
        learned_other = rows.argmax(axis=1) == k
        p_other = np.sort(rows[learned_other, k])[::-1]
        if len(p_other) > allowed:  # only the `allowed` most confident `other` answers stay
            other_threshold = float(p_other[allowed] + EPS)
            learned_other &= rows[:, k] >= other_threshold
    best_topic = np.sort(rows[~learned_other][:, topic_idx].max(axis=1))
    budget = allowed - int(learned_other.sum())
    if budget <= 0 or len(best_topic) == 0:
        return 0.0, other_threshold
    return float(best_topic[min(budget, len(best_topic)) - 1] + EPS), other_threshold
