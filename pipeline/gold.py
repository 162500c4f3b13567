"""The gold protocol: the dev gold set split into a *tune* part and a *report* part, and its statistics.

The dev gold cannot both steer choices and measure them honestly, so each title goes, by a hash of its
dedupe key (stable across runs and machines, no seed), to `tune` (label-model precisions, abstain
thresholds, anything chosen by looking) or `report` (only reported, and crowns the champion). Statistics
are numpy percentile bootstraps over items; a paired one (same resampled items) compares two models.
"""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline import LABELS, TOPICS
from pipeline.cli import UserError
from pipeline.config import DataConfig
from pipeline.io import read_csv_numbered
from pipeline.text import normalize_title

TUNE, REPORT = "tune", "report"
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20261129  # fixed: the same items are resampled for every run, so intervals compare
# One letter per label, so a run's gold answers fit in one registry tag (promote pairs runs from tags).
CODES = {label: label[0] for label in LABELS}
DECODE = {code: label for label, code in CODES.items()}


def read_gold(data_cfg: DataConfig) -> list[dict]:
    """Gold rows (title, label[, source]) for evaluation; [] when no gold set is configured.
    A label outside LABELING.md's five is an error naming the line, before anything trains."""
    if not data_cfg.gold_tsv:
        return []
    path = data_cfg.root() / data_cfg.gold_tsv
    numbered = read_csv_numbered(path, required=("title", "label"), delimiter="\t")
    for line, row in numbered:
        if row["label"] not in LABELS:
            raise UserError(f"{path}:{line}: unknown label {row['label']!r} (labels: {', '.join(LABELS)})")
    return [row for _, row in numbered]


def gold_part(title: str, report_share: float) -> str:
    """`report` or `tune` for one gold title: a hash of its dedupe key, so `[속보] X` and `X` agree."""
    digest = hashlib.sha256(normalize_title(title).key.encode("utf-8")).digest()
    return REPORT if int.from_bytes(digest[:8], "big") / 2**64 < report_share else TUNE


def split_gold(gold: Sequence[dict], report_share: float) -> dict[str, list[dict]]:
    """{"tune": rows, "report": rows}, each in file order."""
    parts: dict[str, list[dict]] = {TUNE: [], REPORT: []}
    for row in gold:
        parts[gold_part(row["title"], report_share)].append(row)
    return parts


def items_digest(titles: Sequence[str]) -> str:
    """Identity of an ordered item list: two runs' answers pair up only when this matches."""
    return hashlib.sha256("\n".join(normalize_title(t).key for t in titles).encode("utf-8")).hexdigest()[:16]


def encode(labels: Sequence[str]) -> str:
    return "".join(CODES[label] for label in labels)


def decode(codes: str) -> list[str]:
    return [DECODE[c] for c in codes]


def macro_f1_rows(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Macro-F1 over the four topics for each row of (samples, items) index arrays; vectorised so
    thousands of resamples cost milliseconds. Matches sklearn's zero_division=0 convention."""
    scores = []
    for k in range(len(TOPICS)):
        tp = ((y_true == k) & (y_pred == k)).sum(axis=-1)
        fp = ((y_true != k) & (y_pred == k)).sum(axis=-1)
        fn = ((y_true == k) & (y_pred != k)).sum(axis=-1)
        denom = 2 * tp + fp + fn
        scores.append(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))
    return np.mean(scores, axis=0)


def _indices(labels: Sequence[str]) -> np.ndarray:
    index = {t: i for i, t in enumerate(TOPICS)}
    return np.array([index.get(label, -1) for label in labels])


@dataclass(frozen=True)
class Interval:
    value: float  # on the items as they are
    lo: float
    hi: float

    def __str__(self) -> str:
        return f"{self.value:+.4f} [95% CI {self.lo:+.4f}, {self.hi:+.4f}]"


def bootstrap(values: Callable[[np.ndarray], np.ndarray], n: int) -> Interval:
    """Percentile 95% interval of a statistic; `values(idx)` scores each row of resampled item indices."""
    point = float(values(np.arange(n)[None, :])[0])
    if n == 0:
        return Interval(point, float("nan"), float("nan"))
    dist = values(np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_SAMPLES, n)))
    return Interval(point, float(np.percentile(dist, 2.5)), float(np.percentile(dist, 97.5)))


def macro_f1_interval(y_true: Sequence[str], y_pred: Sequence[str]) -> Interval:
    t, p = _indices(y_true), _indices(y_pred)
    return bootstrap(lambda idx: macro_f1_rows(t[idx], p[idx]), len(t))


def coverage_interval(flags: Sequence[bool]) -> Interval:
    """Interval of a share, e.g. coverage: in-scope items that keep a topic."""
    f = np.asarray(flags, dtype=float)
    return bootstrap(lambda idx: f[idx].mean(axis=-1) if len(f) else np.zeros(len(idx)), len(f))


def paired_difference(y_true: Sequence[str], pred_a: Sequence[str], pred_b: Sequence[str]) -> Interval:
    """Macro-F1 of b minus a on the same resampled items: b is better beyond noise when lo > 0."""
    if not len(y_true) == len(pred_a) == len(pred_b):
        raise ValueError("paired answers must cover the same items")
    t, a, b = _indices(y_true), _indices(pred_a), _indices(pred_b)
    return bootstrap(lambda idx: macro_f1_rows(t[idx], b[idx]) - macro_f1_rows(t[idx], a[idx]), len(t))
