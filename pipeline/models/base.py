"""The one model interface: fit, predict_proba, save(dir), load(dir).

A saved model directory is self-describing: model.json holds kind, labels, resolved config,
metrics and versions; the kind's own files sit beside it. Models take raw headlines and normalise
them themselves (`TopicModel.texts`, i.e. pipeline.text.model_text), so training and prediction can never
disagree on the text, and every kind reads the same source-invariant text.
"""

from __future__ import annotations

import json
import os
import platform
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pipeline.cli import UserError
from pipeline.io import sha256_file
from pipeline.text import TEXT_VERSION, model_text

META_FILE = "model.json"
# per-epoch curves a kind may report while it trains: log(metrics, step); pipeline.tracking.log_epoch is one
EpochLog = Callable[[dict[str, float], int], None]


@dataclass(frozen=True)
class FitInputs:
    """What a training step needs beyond its labeled rows, passed in by pipeline.train (kinds ignore
    what they do not use): text to pretrain on, a teacher's soft targets (distillation), a curve logger."""

    corpus: Sequence[str] = ()  # every headline we have (no gold), for kinds that pretrain on text
    soft_titles: Sequence[str] = ()  # headlines the labels left out (no gold, no validation rows) ...
    soft_targets: np.ndarray | None = None  # ... and a teacher's probabilities for them, in sorted label order
    log: EpochLog | None = None


NO_INPUTS = FitInputs()


class TopicModel(ABC):
    kind: ClassVar[str]
    # Whether the label audit may refit this kind k times for out-of-fold probabilities (cheap kinds only).
    audit_refits: ClassVar[bool] = True
    # Which rows `fit` learns from: "train", or "tune" (the annotations' tune part) for kinds that combine
    # already-fitted models.
    fit_on: ClassVar[str] = "train"
    # Whether forked processes may share a loaded model (predict --input); see `in_worker`.
    fork_safe: ClassVar[bool] = False
    # Files `_load_weights` opens (inside the directory): each must be listed, and so checked, in model.json.
    files_read: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any, labels: Sequence[str] = ()):
        self.config = config
        self.labels: tuple[str, ...] = tuple(labels)
        self.metrics: dict[str, float] = {}  # filled by training, saved with the model
        self.info: dict[str, Any] = {}  # provenance (data hash, checkpoint, ...), saved with the model
        self.calibration: dict | None = None  # pipeline.calibration parameters, fitted on held-out data
        self.threshold: float | None = None  # abstain below this best-topic score (pipeline.calibration)
        self.other_threshold: float | None = None  # the learned `other` class answers only from this score

    @abstractmethod
    def fit(self, titles: Sequence[str], labels: Sequence[str], seed: int = 0,
            sample_weight: Sequence[float] | None = None, inputs: FitInputs = NO_INPUTS) -> TopicModel:
        """Train on raw headlines and their topics; `seed` makes the run repeatable; `sample_weight`
        (e.g. the label model's confidence) scales each headline's say."""

    @abstractmethod
    def predict_raw(self, titles: Sequence[str]) -> np.ndarray:
        """(n, len(self.labels)) uncalibrated probabilities for raw headlines."""

    def predict_proba(self, titles: Sequence[str]) -> np.ndarray:
        """(n, len(self.labels)) calibrated probabilities for raw headlines."""
        from pipeline.calibration import apply

        return apply(self.calibration, self.predict_raw(titles))

    def in_worker(self, threads: int) -> None:
        """Called in a forked worker before it predicts, with the threads it may use (a kind holding thread
        pools rebuilds them here: threads do not survive a fork)."""
        return None

    @abstractmethod
    def _save_weights(self, model_dir: Path) -> None: ...

    @abstractmethod
    def _load_weights(self, model_dir: Path) -> None: ...

    @staticmethod
    def texts(titles: Sequence[str]) -> list[str]:
        """What a model reads, for every kind, at training and at prediction: pipeline.text.model_text, the
        headline without the marks of its source's style (quotes, tags, ellipses), so no kind can learn the source."""
        return [model_text(t) for t in titles]

    def save(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        self._save_weights(model_dir)
        meta = {"kind": self.kind, "labels": list(self.labels), "files": file_hashes(model_dir), "text": TEXT_VERSION,
                "config": self.config.model_dump(mode="json"),
                "metrics": self.metrics, "info": self.info, "calibration": self.calibration,
                "abstain_threshold": self.threshold, "other_threshold": self.other_threshold,
                "created": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version()}
        (model_dir / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path) -> TopicModel:
        from pipeline.config import ModelMeta, validate

        where = f"{model_dir}/{META_FILE}"
        raw = read_meta(model_dir)
        if "files" not in raw:
            raise UserError(f"{where} lists no file hashes (saved by an older version): retrain it")
        meta = validate(ModelMeta, raw, where)
        if meta.kind != cls.kind:
            raise UserError(f"{model_dir} holds a {meta.kind} model, not {cls.kind}")
        if raw.get("text") != TEXT_VERSION:  # it would read other text than it learned from (pipeline.text)
            raise UserError(f"{model_dir} was trained on headlines read as {raw.get('text') or 'clean_text'}, "
                            f"this version reads {TEXT_VERSION}: retrain it (make train)")
        verify_files(model_dir, meta.files)  # before any weights file is opened
        check_listed(model_dir, meta.files, cls.files_read)
        config_class = cls.config_class()
        saved = {k: v for k, v in meta.config.items() if k not in config_class.RETIRED}
        model = cls(validate(config_class, saved, where), meta.labels)
        model.metrics, model.info = raw.get("metrics", {}), raw.get("info", {})
        model.calibration = meta.calibration.model_dump() if meta.calibration else None
        model.threshold, model.other_threshold = meta.abstain_threshold, meta.other_threshold
        try:
            model._load_weights(model_dir)
        except UserError:
            raise
        except Exception as err:  # truncated or foreign files: say which directory, not a traceback
            raise UserError(f"{model_dir}: cannot load model weights ({type(err).__name__}: {err})") from None
        return model

    @classmethod
    @abstractmethod
    def config_class(cls) -> type: ...


def file_hashes(model_dir: Path) -> dict[str, str]:
    """sha256 of every file the model loads (all but its own model.json), by path inside the directory."""
    return {p.relative_to(model_dir).as_posix(): sha256_file(p) for p in sorted(model_dir.rglob("*"))
            if p.is_file() and p != model_dir / META_FILE}


def closed_dir(model_dir: Path) -> Path:
    """The model directory's real path, once nothing in it leads outside: a symlink anywhere under it (a
    listed file, model.json, a subdirectory such as an ensemble's members) must resolve inside it, or the
    model would read, and hash, someone else's file. Links that stay inside are allowed; the directory itself
    may be reached through links (models/current, models/<kind> point into models/.versions)."""
    root = Path(os.path.realpath(model_dir))
    for folder, dirs, files in os.walk(root):  # does not follow links: each one is checked, not entered
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink() and not _inside(root, path):
                raise UserError(f"{model_dir}: {path.relative_to(root).as_posix()} is a symlink that leads outside "
                                f"the model directory (to {os.path.realpath(path)}); a model reads only its own "
                                "files: copy the file in, or retrain")
    return root


def _inside(root: Path, path: Path) -> bool:
    """Whether `path`, every link followed, ends inside `root` (realpath never raises, even on a loop)."""
    return Path(os.path.realpath(path)).is_relative_to(root)


def verify_files(model_dir: Path, files: dict[str, str]) -> None:
    """The weights are the ones model.json lists, byte for byte, and all inside the directory: a path with `..`
    or one leading out through a link is refused before it is hashed, a corrupt or swapped file before it is
    read (the formats themselves run no code: numpy arrays without pickle, ONNX, JSON)."""
    root = closed_dir(model_dir)
    for name, expected in files.items():
        path = root / name
        if ".." in Path(name).parts or Path(name).is_absolute() or not _inside(root, path):
            raise UserError(f"{model_dir}: {name} (listed in {META_FILE}) is outside the model directory; "
                            "a model reads only its own files")
        if not path.is_file():
            raise UserError(f"{model_dir}: {name} is missing (listed in {META_FILE})")
        if sha256_file(path) != expected:
            raise UserError(f"{model_dir}: {name} does not match the sha256 in {META_FILE} (corrupt or altered); "
                            "retrain it or fetch it again")


def check_listed(model_dir: Path, files: dict[str, str], needed: Sequence[str]) -> None:
    """Every file a kind's loader opens is one model.json lists (so verify_files checked it): an unlisted one
    would be read unchecked."""
    missing = [name for name in needed if name not in files]
    if missing:
        raise UserError(f"{model_dir}: {META_FILE} does not list {', '.join(missing)}, which this model loads "
                        "(saved by an older version?): retrain it")


def read_meta(model_dir: Path) -> dict:
    """The self-description of a saved model directory; a clear error when it is not one. The directory is
    checked to be closed (closed_dir) before model.json, the first file read, is opened."""
    if not Path(model_dir).is_dir():
        raise UserError(f"{model_dir} is not a saved model (no {META_FILE}); train one with `make train`")
    closed_dir(Path(model_dir))
    meta_path = Path(model_dir) / META_FILE
    if not meta_path.is_file():
        raise UserError(f"{model_dir} is not a saved model (no {META_FILE}); train one with `make train`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{meta_path}: corrupt model description ({err})") from None
    if not isinstance(meta, dict) or "kind" not in meta or "labels" not in meta:
        raise UserError(f"{meta_path}: corrupt model description (needs kind and labels)")
    return meta
