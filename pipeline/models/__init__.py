"""Model kinds behind one interface (pipeline.models.base.TopicModel).

Kinds are imported lazily, so loading a TF-IDF model never imports torch or transformers.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from pipeline.cli import UserError
from pipeline.models.base import META_FILE, TopicModel

# kind -> "module:Class"
KINDS = {
    "tfidf": "pipeline.models.tfidf:TfidfModel",
    "kobert": "pipeline.models.kobert:KobertModel",
    "ensemble": "pipeline.models.ensemble:EnsembleModel",
}


def model_class(kind: str) -> type[TopicModel]:
    if kind not in KINDS:
        raise UserError(f"unknown model kind {kind!r} (kinds: {', '.join(KINDS)})")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def new_model(kind: str, config_path: Path | None = None) -> TopicModel:
    """An unfitted model of `kind`, configured from `config_path` (code defaults when None)."""
    from pipeline.config import load_config

    cls = model_class(kind)
    return cls(load_config(cls.config_class(), config_path))


def read_meta(model_dir: Path) -> dict:
    """The self-description of a saved model directory; a clear error when it is not one."""
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


def load_model(model_dir: Path | str) -> TopicModel:
    model_dir = Path(model_dir)
    return model_class(read_meta(model_dir)["kind"]).load(model_dir)
