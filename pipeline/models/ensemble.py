"""Ensemble: the calibrated TF-IDF and transformer models combined by weights fitted on the tune set.

    python -m pipeline.train --model ensemble       (configs/ensemble.yaml; after the member kinds)

The members are already-trained models (models/<kind>, same labeled table and split), never refitted
here. `fit` runs on the annotations' *tune* part (pipeline.gold): their training rows would flatter them,
and validation rows share the training sources, so weights fitted there lean on whichever member learned
the sources best. It finds the linear-pool weights of the members' calibrated probabilities that minimise
log-loss.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from pipeline.cli import UserError
from pipeline.config import EnsembleConfig
from pipeline.models.base import NO_INPUTS, FitInputs, TopicModel

MEMBERS_DIR = "members"


class EnsembleModel(TopicModel):
    kind = "ensemble"
    audit_refits = False  # refitting means refitting every member: the members' own runs audit the labels
    fit_on: ClassVar[str] = "tune"  # see module docstring

    @classmethod
    def config_class(cls) -> type:
        return EnsembleConfig

    def __init__(self, config: EnsembleConfig, labels: Sequence[str] = (), members: Sequence[TopicModel] = ()):
        super().__init__(config, labels)
        self.members = list(members)
        self.weights: list[float] = []

    def _member_proba(self, titles: Sequence[str]) -> list[np.ndarray]:
        """Each member's calibrated probabilities, columns in the ensemble's label order."""
        return [m.predict_proba(titles)[:, [m.labels.index(label) for label in self.labels]] for m in self.members]

    def fit(self, titles: Sequence[str], labels: Sequence[str], seed: int = 0,
            sample_weight: Sequence[float] | None = None, inputs: FitInputs = NO_INPUTS) -> EnsembleModel:
        from scipy.optimize import minimize
        from scipy.special import softmax

        if len(self.members) < 2:
            raise UserError("an ensemble needs at least two trained members")
        self.labels = tuple(self.members[0].labels)
        if any(set(m.labels) != set(self.labels) for m in self.members):
            raise UserError(f"ensemble members disagree on labels: {[m.labels for m in self.members]}")
        stacked = np.stack(self._member_proba(titles))  # (members, rows, labels)
        y = np.array([self.labels.index(label) for label in labels])
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)

        def loss(z: np.ndarray) -> float:  # weights through a softmax: positive, summing to one
            p = np.einsum("m,mnk->nk", softmax(z), stacked)[np.arange(len(y)), y]
            return float(-(w * np.log(np.clip(p, 1e-9, 1))).sum() / w.sum())

        z = minimize(loss, np.zeros(len(self.members)), method="Nelder-Mead",
                     options={"xatol": 1e-4, "fatol": 1e-7}).x
        self.weights = softmax(z).round(6).tolist()
        self.info["weights"] = self.weights
        self.info["checkpoint"] = "+".join(f"{m.kind}:{m.info.get('checkpoint', 'none')}" for m in self.members)
        self.info["members"] = [{"kind": m.kind, "weight": wt, "mlflow_run_id": m.info.get("mlflow_run_id"),
                                 "train_data_sha256": m.info.get("train_data_sha256")}
                                for m, wt in zip(self.members, self.weights, strict=True)]
        return self

    def predict_raw(self, titles: Sequence[str]) -> np.ndarray:
        if not self.weights:
            raise RuntimeError("model is not fitted")
        return np.einsum("m,mnk->nk", np.array(self.weights), np.stack(self._member_proba(titles)))

    def _save_weights(self, model_dir: Path) -> None:
        root = model_dir / MEMBERS_DIR
        shutil.rmtree(root, ignore_errors=True)
        for i, member in enumerate(self.members):
            member.save(root / f"{i}-{member.kind}")

    def _load_weights(self, model_dir: Path) -> None:
        from pipeline.models import load_model

        dirs = sorted((model_dir / MEMBERS_DIR).iterdir(), key=lambda p: int(p.name.split("-")[0]))
        self.members = [load_model(d) for d in dirs]
        self.weights = list(self.info["weights"])
        if len(self.weights) != len(self.members):
            raise ValueError(f"{len(self.weights)} weights for {len(self.members)} members")
