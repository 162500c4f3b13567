"""Model kinds behind one interface (pipeline.models.base.TopicModel).

Kinds are imported lazily; a saved model loads through its PREDICTORS entry, so predicting never imports torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pipeline.cli import UserError
from pipeline.models.base import TopicModel, read_meta

# kind -> "module:Class"
KINDS = {
    "tfidf": "pipeline.models.tfidf:TfidfModel",
    "kobert": "pipeline.models.kobert:KobertModel",
    "ensemble": "pipeline.models.ensemble:EnsembleModel",
}


# what a saved directory loads as, when prediction needs lighter code than training: no torch for the transformer
PREDICTORS = {**KINDS, "kobert": "pipeline.models.onnx:OnnxKobert"}


def model_class(kind: str, table: dict[str, str] = KINDS) -> type[TopicModel]:
    if kind not in table:
        raise UserError(f"unknown model kind {kind!r} (kinds: {', '.join(table)})")
    module, name = table[kind].split(":")
    return getattr(importlib.import_module(module), name)


def new_model(kind: str, config_path: Path | None = None) -> TopicModel:
    """An unfitted model of `kind`, configured from `config_path` (code defaults when None)."""
    from pipeline.config import load_config

    cls = model_class(kind)
    return cls(load_config(cls.config_class(), config_path))


def load_model(model_dir: Path | str) -> TopicModel:
    """A saved model, ready to predict (through its kind's light predictor where it has one)."""
    model_dir = Path(model_dir)
    return model_class(read_meta(model_dir)["kind"], PREDICTORS).load(model_dir)
