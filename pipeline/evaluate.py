"""Evaluation shared by every model kind, so all runs report the same metric names.

Metric names: <split>_macro_f1, <split>_accuracy, <split>_{precision,recall,f1}_<topic>, with split
`val` (held-out weak labels) or `gold` (../shared/data/gold/dev.tsv, four topics). Gold `other`
items are counted separately: gold_other_n and gold_other_as_<topic>.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline import TOPICS

OTHER = "other"


@dataclass
class Evaluation:
    metrics: dict[str, float]
    confusion: list[list[int]]  # rows: true topic, columns: predicted topic, order TOPICS
    errors: list[dict] = field(default_factory=list)  # misclassified items: title, label, predicted, confidence


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], prefix: str) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=list(TOPICS), zero_division=0)
    metrics = {f"{prefix}_macro_f1": float(np.mean(f)), f"{prefix}_accuracy": float(accuracy_score(y_true, y_pred)),
               f"{prefix}_n": float(len(y_true))}
    for i, topic in enumerate(TOPICS):
        metrics[f"{prefix}_precision_{topic}"] = float(p[i])
        metrics[f"{prefix}_recall_{topic}"] = float(r[i])
        metrics[f"{prefix}_f1_{topic}"] = float(f[i])
    return metrics


def evaluate(titles: Sequence[str], labels: Sequence[str], proba: np.ndarray, model_labels: Sequence[str],
             prefix: str) -> Evaluation:
    """Score predictions (rows of `proba` over `model_labels`) against labels; `other` counted apart."""
    from sklearn.metrics import confusion_matrix

    best = proba.argmax(axis=1)
    predicted = [model_labels[i] for i in best]
    confidence = proba.max(axis=1)
    scope = [i for i, y in enumerate(labels) if y != OTHER]
    y_true = [labels[i] for i in scope]
    y_pred = [predicted[i] for i in scope]
    metrics = classification_metrics(y_true, y_pred, prefix)
    others = Counter(predicted[i] for i, y in enumerate(labels) if y == OTHER)
    if others:
        metrics[f"{prefix}_other_n"] = float(sum(others.values()))
        metrics.update({f"{prefix}_other_as_{t}": float(others[t]) for t in TOPICS})
    errors = [{"title": titles[i], "label": labels[i], "predicted": predicted[i],
               "confidence": round(float(confidence[i]), 4)}
              for i in range(len(labels)) if labels[i] != predicted[i]]
    matrix = confusion_matrix(y_true, y_pred, labels=list(TOPICS)).tolist()
    return Evaluation(metrics, matrix, errors)


def format_report(evaluation: Evaluation, prefix: str) -> str:
    m = evaluation.metrics
    lines = [f"{prefix}: macro-F1 {m[f'{prefix}_macro_f1']:.3f}  accuracy {m[f'{prefix}_accuracy']:.3f}  "
             f"(n={int(m[f'{prefix}_n'])})"]
    lines += [f"  {t:<9} P {m[f'{prefix}_precision_{t}']:.3f}  R {m[f'{prefix}_recall_{t}']:.3f}  "
              f"F1 {m[f'{prefix}_f1_{t}']:.3f}" for t in TOPICS]
    if f"{prefix}_other_n" in m:
        spread = ", ".join(f"{t} {int(m[f'{prefix}_other_as_{t}'])}" for t in TOPICS)
        lines.append(f"  other ({int(m[f'{prefix}_other_n'])} items) predicted as: {spread}")
    return "\n".join(lines)
