"""Label model: combine labeling-function votes into one probabilistic label per headline.

A one-coin model (Snorkel/Dawid-Skene with one accuracy per function): function j is right with
probability a_j and, when wrong, picks any other label uniformly, so (with a uniform class prior)

    P(y = k | votes) ∝ Π_j  a_j                  if vote_j == k
                          (1 - a_j) / (K - 1)     otherwise            (non-voting functions drop out)

A function may be *blind* to some labels: no source has a crime section, so when a crime rule votes on
a headline, a section's vote does not count against crime (crime stays level with the section's label;
without a crime vote the blindness is moot: the silent crime rules are the evidence).
"""

from collections.abc import Mapping, Sequence

import numpy as np


def smoothed_accuracy(correct: int, hits: int, prior: float, strength: float) -> float:
    """Posterior mean of a Beta(prior*strength, (1-prior)*strength) after `correct` of `hits`."""
    return (correct + prior * strength) / (hits + strength)


class LabelModel:
    def __init__(self, labels: Sequence[str], accuracies: Mapping[str, float],
                 blind: Mapping[str, Sequence[str]] | None = None):
        self.labels = tuple(labels)
        self.accuracies = dict(accuracies)
        self.blind = {name: tuple(b) for name, b in (blind or {}).items()}  # function -> labels it cannot see
        self._index = {label: i for i, label in enumerate(self.labels)}

    def posterior(self, votes: Sequence[tuple[str, str]]) -> np.ndarray:
        """P(label) for one headline's votes [(function name, label), ...]; uniform when no votes."""
        k = len(self.labels)
        log_p = np.zeros(k)
        voted = {label for _, label in votes}
        for name, label in votes:
            acc = min(max(self.accuracies[name], 1e-3), 1 - 1e-3)
            wrong = np.log((1 - acc) / (k - 1))
            log_p += wrong
            for seen_as_right in {label, *(voted & set(self.blind.get(name, ())))}:
                log_p[self._index[seen_as_right]] += np.log(acc) - wrong
        p = np.exp(log_p - log_p.max())
        return p / p.sum()

    def vote(self, votes: Sequence[tuple[str, str]], min_confidence: float) -> tuple[str, float]:
        """(label, confidence); label '' when there are no votes or the best posterior is too low."""
        if not votes:
            return "", 0.0
        p = self.posterior(votes)
        best = int(p.argmax())
        confidence = float(p[best])
        return (self.labels[best] if confidence >= min_confidence else ""), confidence
