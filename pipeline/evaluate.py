"""Evaluation shared by every model kind, so all runs report the same metric names.

Names (pipeline.names): report/macro_f1, report/accuracy, report/{precision,recall,f1}_<topic> over the four
topics, and so for each split (val, tune — the annotations' tune part —, report — all gold —); a gold slice's are
gold_file/<file>_macro_f1 and gold_source/<source>_macro_f1...; `other` items are counted apart (report/other_*).
A gold slice's macro-F1 averages the topics it has enough items of (pipeline.gold.scored_topics); per-topic
figures are always there.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline import OTHER, TOPICS
from pipeline.names import key_prefix


@dataclass
class Evaluation:
    metrics: dict[str, float]
    confusion: list[list[int]]  # rows: true topic, columns: predicted topic, order TOPICS
    errors: list[dict] = field(default_factory=list)  # misclassified items: title, label, predicted, confidence
    reliability: dict[str, list] = field(default_factory=dict)  # "raw"/"calibrated": (confidence, accuracy, n) bins
    # in-scope items (gold label a topic), in order: what paired comparisons and intervals resample
    scope_titles: list[str] = field(default_factory=list)
    truth: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)  # best topic, abstaining off
    kept: list[bool] = field(default_factory=list)  # a topic answered, abstaining on
    topics: tuple[str, ...] = TOPICS  # what the macro-F1 averages


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], prefix: str,
                           topics: Sequence[str] = TOPICS) -> dict[str, float]:
    """Macro-F1 over `topics`; accuracy and per-topic precision, recall and F1 over all four."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    pre = key_prefix(prefix)
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=list(TOPICS), zero_division=0)
    return {f"{pre}macro_f1": float(np.mean([f[TOPICS.index(t)] for t in topics])),
            f"{pre}accuracy": float(accuracy_score(y_true, y_pred)),
            f"{pre}n": float(len(y_true)),
            **{f"{pre}{name}_{topic}": float(values[i]) for i, topic in enumerate(TOPICS)
               for name, values in (("precision", p), ("recall", r), ("f1", f))}}


def evaluate(titles: Sequence[str], labels: Sequence[str], proba: np.ndarray, model_labels: Sequence[str],
             prefix: str, threshold: float | None = None, raw: np.ndarray | None = None,
             other_threshold: float | None = None, topics: Sequence[str] = TOPICS) -> Evaluation:
    """Score calibrated `proba` (rows over `model_labels`) against labels.

    Topic metrics use the forced topic (best of the four), so runs with and without abstaining compare;
    abstain metrics use the real answer (`other` when the model abstains). `other` items counted apart.
    """
    from sklearn.metrics import confusion_matrix

    from pipeline.calibration import answer_labels, expected_calibration_error, reliability

    pre = key_prefix(prefix)

    forced = answer_labels(proba, model_labels, threshold, abstain=False)
    answered = answer_labels(proba, model_labels, threshold, True, other_threshold)
    confidence = proba.max(axis=1)
    scope = [i for i, y in enumerate(labels) if y != OTHER]
    y_true, y_forced = [labels[i] for i in scope], [forced[i] for i in scope]
    metrics = classification_metrics(y_true, y_forced, prefix, topics)
    others = [i for i, y in enumerate(labels) if y == OTHER]
    if others:
        spread = Counter(forced[i] for i in others)
        metrics[f"{pre}other_n"] = float(len(others))
        metrics.update({f"{pre}other_as_{t}": float(spread[t]) for t in TOPICS})
        metrics[f"{pre}other_abstained"] = sum(answered[i] == OTHER for i in others) / len(others)
    kept = [i for i in scope if answered[i] != OTHER]
    metrics[f"{pre}coverage"] = len(kept) / max(len(scope), 1)
    if kept:
        kept_metrics = classification_metrics([labels[i] for i in kept], [answered[i] for i in kept], "k")
        metrics[f"{pre}kept_accuracy"] = kept_metrics["k/accuracy"]
        metrics[f"{pre}kept_macro_f1"] = kept_metrics["k/macro_f1"]
    index = {label: i for i, label in enumerate(model_labels)}
    y_idx = np.array([index[labels[i]] for i in scope])
    metrics[f"{pre}ece"] = expected_calibration_error(proba[scope], y_idx)
    curves = {"calibrated": reliability(proba[scope], y_idx)}
    if raw is not None:
        metrics[f"{pre}ece_raw"] = expected_calibration_error(raw[scope], y_idx)
        curves["raw"] = reliability(raw[scope], y_idx)
    errors = [{"title": titles[i], "label": labels[i], "predicted": answered[i],
               "confidence": round(float(confidence[i]), 4)}
              for i in range(len(labels)) if labels[i] != answered[i]]
    matrix = confusion_matrix(y_true, y_forced, labels=list(TOPICS)).tolist()
    return Evaluation(metrics, matrix, errors, curves, scope_titles=[titles[i] for i in scope], truth=y_true,
                      forced=y_forced, kept=[answered[i] != OTHER for i in scope], topics=tuple(topics))


def add_intervals(evaluation: Evaluation, prefix: str) -> None:
    """Bootstrap 95% intervals (<metric>_lo/_hi, e.g. report/macro_f1_lo) for macro-F1 and coverage, in place."""
    from pipeline.gold import coverage_interval, macro_f1_interval

    pre = key_prefix(prefix)
    m = evaluation.metrics
    for name, interval in ((f"{pre}macro_f1", macro_f1_interval(evaluation.truth, evaluation.forced,
                                                                 evaluation.topics)),
                           (f"{pre}coverage", coverage_interval(evaluation.kept))):
        m[f"{name}_lo"], m[f"{name}_hi"] = interval.lo, interval.hi


def format_report(evaluation: Evaluation, prefix: str) -> str:
    pre = key_prefix(prefix)
    m = evaluation.metrics
    interval = (f" [95% CI {m[f'{pre}macro_f1_lo']:.3f}-{m[f'{pre}macro_f1_hi']:.3f}]"
                if f"{pre}macro_f1_lo" in m else "")
    over = "" if evaluation.topics == TOPICS else f" over {'/'.join(evaluation.topics)}"
    lines = [f"{prefix}: macro-F1{over} {m[f'{pre}macro_f1']:.3f}{interval}  accuracy "
             f"{m[f'{pre}accuracy']:.3f}  (n={int(m[f'{pre}n'])})"]
    lines += [f"  {t:<9} P {m[f'{pre}precision_{t}']:.3f}  R {m[f'{pre}recall_{t}']:.3f}  "
              f"F1 {m[f'{pre}f1_{t}']:.3f}" for t in TOPICS]
    if f"{pre}other_n" in m:
        spread = ", ".join(f"{t} {int(m[f'{pre}other_as_{t}'])}" for t in TOPICS)
        lines.append(f"  other ({int(m[f'{pre}other_n'])} items) forced to a topic: {spread}; "
                     f"abstained on {m[f'{pre}other_abstained']:.1%}")
    if f"{pre}kept_accuracy" in m:
        cover = (f" [95% CI {m[f'{pre}coverage_lo']:.1%}-{m[f'{pre}coverage_hi']:.1%}]"
                 if f"{pre}coverage_lo" in m else "")
        lines.append(f"  abstaining: coverage {m[f'{pre}coverage']:.1%}{cover} of in-scope, accuracy on kept "
                     f"{m[f'{pre}kept_accuracy']:.3f}, macro-F1 on kept {m[f'{pre}kept_macro_f1']:.3f}")
    if f"{pre}ece_raw" in m:
        lines.append(f"  ECE {m[f'{pre}ece_raw']:.3f} raw -> {m[f'{pre}ece']:.3f} calibrated")
    return "\n".join(lines)
