"""Configuration: defaults live in frozen dataclasses here; `configs/*.yaml` override them.

Unknown keys, wrong types and unreadable YAML are errors (one line, naming the file and key).
The resolved config (defaults + overrides) is what gets saved with every model and logged.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pipeline import LABELS, REPO_ROOT
from pipeline.cli import UserError

CONFIG_DIR = REPO_ROOT / "configs"
DATA_DIR_ENV = "HEADLINE_DATA_DIR"

T = TypeVar("T")


@dataclass(frozen=True)
class DataConfig:
    # Folder holding the shared data; $HEADLINE_DATA_DIR overrides it. Relative to the repo root.
    data_dir: str | None = None
    # KLUE-YNAT train CSV (guid,title,label,...), relative to data_dir. null: load klue/klue:ynat
    # from the Hugging Face Hub through `datasets` (needs network).
    ynat_csv: str | None = "ynat/ynat_train.csv"
    ynat_hub_id: str = "klue/klue"
    ynat_hub_config: str = "ynat"
    # Listing exports (CSV: title, section, date or listed_on, site); globs relative to data_dir.
    listing_csvs: tuple[str, ...] = ("listings/*.csv",)
    # Saved listing pages: ranknews-style text (번호 제목 글쓴이 날짜 rows) or HTML board/list pages.
    pages: tuple[str, ...] = ("listings/*.txt", "listings/*.html", "listings/*.htm")
    # Gold labels, evaluation only (title, label, source); null skips gold evaluation.
    gold_tsv: str | None = "gold/dev.tsv"
    # Share of gold titles (by a hash of the title) in the *report* part, which only reports and crowns;
    # the rest is the *tune* part (label-model precisions, abstain threshold, choices). pipeline/gold.py.
    gold_report_share: float = 0.5
    # Stage outputs, relative to the repo root.
    headlines_csv: str = "data/interim/headlines.csv"
    labeled_csv: str = "data/processed/labeled.csv"
    # Decisions of `python -m pipeline.label review`; they override every rule on the next labeling.
    manual_labels_csv: str = "data/manual/labels.csv"
    # Suspected label errors found by the audit (confident learning), ranked; input of the review.
    label_issues_csv: str = "data/review/label_issues.csv"


@dataclass(frozen=True)
class Rule:
    name: str  # reported in per-rule counts and stored with every label it produces
    label: str  # one of LABELS (the four topics or other)
    patterns: tuple[str, ...]  # regexes over the normalised headline; any match votes
    exclude: tuple[str, ...] = ()  # regexes that veto this rule's vote
    # Where the patterns came from (e.g. "pipeline.propose on tfidf run <id>, reviewed 2026-11-29"):
    # mined rules say which command proposed them and who accepted them.
    provenance: str = ""


@dataclass(frozen=True)
class LabelConfig:
    # Source section -> topic (YNAT label column, listing `section` column). Rule name: section:<name>.
    section_map: dict[str, str] = field(default_factory=lambda: {
        "정치": "politics", "경제": "business", "스포츠": "sports",
        "Politics": "politics", "Economic": "business",
    })
    rules: tuple[Rule, ...] = ()
    # Label model (pipeline/labelmodel.py): each function's accuracy is its measured precision on the
    # gold dev set, smoothed towards prior_accuracy with prior_strength pseudo-votes.
    prior_accuracy: float = 0.8
    prior_strength: float = 10.0
    min_confidence: float = 0.6  # abstain (no label) below this posterior
    # Labels no source section can name (there is no crime section anywhere): a section's vote says
    # nothing for or against them, so a crime rule on a Politics-section headline is not outvoted by
    # the page it was listed on (LABELING.md: a politician's criminal case is crime).
    sections_blind_to: tuple[str, ...] = ("crime",)


@dataclass(frozen=True)
class TfidfConfig:
    char_ngram_min: int = 1  # character n-grams inside word boundaries (char_wb)
    char_ngram_max: int = 4
    use_morphemes: bool = True  # add Kiwi morpheme unigrams/bigrams as a second feature block
    morph_ngram_max: int = 2
    min_df: int = 2  # drop n-grams seen in fewer headlines (noise, names)
    max_features: int | None = 400_000  # per feature block
    sublinear_tf: bool = True
    C: float = 4.0  # inverse regularisation strength of the logistic regression
    class_weight: str | None = "balanced"  # crime is rare: weight classes inversely to frequency
    max_iter: int = 3000


@dataclass(frozen=True)
class KobertConfig:
    checkpoint: str = "skt/kobert-base-v1"  # Hub id or local directory (BERT checkpoint + spiece.model)
    offline_fallback: bool = True  # checkpoint unreachable: build a KoBERT-style model from our headlines
    pretrained_dir: str = "models/pretrained"  # cache of offline builds, keyed by corpus and recipe
    # offline build: SentencePiece vocab (KoBERT's size and special ids) and a small BERT
    vocab_size: int = 8002
    hidden_size: int = 128
    layers: int = 2
    heads: int = 2
    pretrain_epochs: int = 1  # masked-language-model passes over the unlabeled headlines
    pretrain_lr: float = 5e-4
    mask_prob: float = 0.15
    # fine-tuning
    # Model kind (configs/<kind>.yaml) fit on the same training rows whose soft predictions label the
    # headlines the label model left out, as extra fine-tuning rows; "none" fine-tunes on labeled rows only.
    teacher: str = "tfidf"
    max_length: int = 48  # pieces per headline incl. [CLS]/[SEP]; headlines are short
    batch_size: int = 64
    epochs: int = 4
    learning_rate: float = 3e-4
    patience: int = 1  # epochs without early-stopping macro-F1 gain before stopping
    early_stopping_fraction: float = 0.1  # share of the training rows held out for early stopping
    predict_batch_size: int = 128
    seed: int = 13


@dataclass(frozen=True)
class EnsembleConfig:
    # Trained kinds (models/<kind>) whose calibrated probabilities are pooled; weights are fitted on the
    # validation split, so every member must come from the same labeled table and split.
    members: tuple[str, ...] = ("tfidf", "kobert")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "tfidf"  # model kind: tfidf, kobert or ensemble
    seed: int = 13  # split and model seed
    val_fraction: float = 0.1  # stratified held-out share of the labeled rows
    experiment: str = "headline-topics"  # MLflow experiment name
    models_dir: str = "models"  # exports go to <models_dir>/<kind>; <models_dir>/current is the default
    # How the label model's confidence enters training: "confidence" weights each headline by it,
    # "none" trains on hard labels.
    sample_weighting: str = "confidence"
    audit_folds: int = 3  # out-of-fold folds for the label audit (confident learning); 0 turns it off
    learn_other: bool = True  # also train on headlines labeled `other` as a fifth class
    # Abstain threshold: chosen so this share of in-scope headlines keeps a topic, on the gold tune part
    # ("gold_tune": it looks like new listings; validation rows share the training distribution and
    # overpromise) or on the validation split ("val"; also the fallback when there is no gold).
    abstain_coverage: float = 0.97
    abstain_on: str = "gold_tune"


def load_config(cls: type[T], path: Path | str | None = None, overrides: dict | None = None) -> T:
    """Defaults of `cls`, overridden by the YAML file at `path` (if given) and then `overrides`."""
    data: dict = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        data = _read_yaml(path)
    data.update(overrides or {})
    return from_dict(cls, data, where)


def config_dict(cfg: Any) -> dict:
    """Plain-data form of a config, for JSON/MLflow."""
    return dataclasses.asdict(cfg)


def data_root(cfg: DataConfig) -> Path:
    """Where the shared data lives: $HEADLINE_DATA_DIR, else data_dir from the config."""
    root = os.environ.get(DATA_DIR_ENV) or cfg.data_dir
    if not root:
        raise UserError(f"data folder not set: export {DATA_DIR_ENV}=/path/to/data or set data_dir in "
                        "configs/data.yaml")
    path = Path(root)
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_dir():
        raise UserError(f"data folder {path} does not exist (set {DATA_DIR_ENV} or data_dir in "
                        "configs/data.yaml)")
    return path


def repo_path(rel: str) -> Path:
    path = Path(rel)
    return path if path.is_absolute() else REPO_ROOT / path


def _read_yaml(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def from_dict(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} "
                        f"(known: {', '.join(sorted(names))})")
    hints = typing.get_type_hints(cls)
    values = {key: _coerce(hints[key], value, f"{where}: {key}") for key, value in data.items()}
    try:
        cfg = cls(**values)
    except TypeError as err:
        raise UserError(f"{where}: {err}") from None
    _validate(cfg, where)
    return cfg


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check `value` against a field's type hint, turning YAML lists into tuples."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except UserError as err:
                errors.append(str(err))
        raise UserError(errors[0])
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {_coerce(args[0], k, where): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise UserError(f"{where}: expected {hint.__name__}, got {type(value).__name__} ({value!r})")
    return value


def _validate(cfg: Any, where: str) -> None:
    """Cross-field checks that types alone cannot express."""
    labels: list[str] = []
    if isinstance(cfg, Rule):
        labels = [cfg.label]
        if not cfg.patterns:
            raise UserError(f"{where}: rule {cfg.name} has no patterns")
        import re

        for pattern in cfg.patterns + cfg.exclude:
            try:
                re.compile(pattern)
            except re.error as err:
                raise UserError(f"{where}: rule {cfg.name}: bad regex {pattern!r} ({err})") from None
    if isinstance(cfg, LabelConfig):
        labels = [*cfg.section_map.values(), *cfg.sections_blind_to]
        names = [r.name for r in cfg.rules]
        if len(set(names)) != len(names):
            raise UserError(f"{where}: rule names must be unique")
        if not 0 < cfg.prior_accuracy < 1 or not 0 <= cfg.min_confidence <= 1:
            raise UserError(f"{where}: prior_accuracy must be in (0, 1) and min_confidence in [0, 1]")
    bad = sorted(set(labels) - set(LABELS))
    if bad:
        raise UserError(f"{where}: unknown topic(s) {', '.join(bad)} (labels: {', '.join(LABELS)})")
    if isinstance(cfg, DataConfig) and not 0 < cfg.gold_report_share < 1:
        raise UserError(f"{where}: gold_report_share must be between 0 and 1")
    if isinstance(cfg, TrainConfig):
        if not 0 < cfg.val_fraction < 0.5:
            raise UserError(f"{where}: val_fraction must be between 0 and 0.5")
        if cfg.sample_weighting not in ("confidence", "none"):
            raise UserError(f"{where}: sample_weighting must be 'confidence' or 'none'")
        if cfg.abstain_on not in ("gold_tune", "val"):
            raise UserError(f"{where}: abstain_on must be 'gold_tune' or 'val'")
        if not 0 < cfg.abstain_coverage <= 1:
            raise UserError(f"{where}: abstain_coverage must be in (0, 1]")
        if cfg.audit_folds == 1 or cfg.audit_folds < 0:
            raise UserError(f"{where}: audit_folds must be 0 (off) or at least 2")
