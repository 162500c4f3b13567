"""Label audit: find likely label errors in the training table with confident learning.

Out-of-fold probabilities (k-fold, each fold's model never saw the headline) go to cleanlab's
`find_label_issues`; the suspects, ranked by how little the model believes their given label, are
what `python -m pipeline.review` shows first. Runs inside `make train` (train.audit_folds).
"""

from collections.abc import Callable, Sequence

import numpy as np

from pipeline import LABELS
from pipeline.models.base import TopicModel

ISSUE_COLUMNS = ("rank", "key", "title", "label", "rule", "suggested", "suggested_p", "label_p")


def out_of_fold_proba(make_model: Callable[[], TopicModel], titles: Sequence[str], labels: Sequence[str],
                      weights: Sequence[float] | None, folds: int, seed: int) -> np.ndarray:
    """(n, len(classes)) uncalibrated probabilities, each row from a model trained without that row;
    columns in the order of `classes_of(labels)`."""
    from sklearn.model_selection import StratifiedKFold

    titles, labels = list(titles), list(labels)
    classes = classes_of(labels)
    proba = np.zeros((len(titles), len(classes)))
    for fit_idx, held_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(titles, labels):
        model = make_model().fit([titles[i] for i in fit_idx], [labels[i] for i in fit_idx], seed=seed,
                                 sample_weight=None if weights is None else [weights[i] for i in fit_idx])
        order = [model.labels.index(c) for c in classes]
        proba[held_idx] = model.predict_raw([titles[i] for i in held_idx])[:, order]
    return proba


def classes_of(labels: Sequence[str]) -> list[str]:
    """Topics first, then `other` when present: a fixed column order."""
    present = set(labels)
    return [label for label in LABELS if label in present]


def find_issues(rows: Sequence[dict], proba: np.ndarray) -> list[dict]:
    """Rows whose given label confident learning doubts, most suspicious first."""
    from cleanlab.filter import find_label_issues

    classes = classes_of([r["label"] for r in rows])
    given = np.array([classes.index(r["label"]) for r in rows])
    ranked = find_label_issues(given, proba, return_indices_ranked_by="self_confidence")
    best = proba.argmax(axis=1)
    return [{"rank": rank, **{k: rows[i][k] for k in ("key", "title", "label", "rule")}, "suggested": classes[best[i]],
             "suggested_p": round(float(proba[i, best[i]]), 4), "label_p": round(float(proba[i, given[i]]), 4)}
            for rank, i in enumerate(ranked, start=1)]
