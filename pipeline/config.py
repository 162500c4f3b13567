"""Configuration: every default lives in the pydantic models here; `configs/*.yaml` hold only overrides.

Models are frozen and forbid unknown keys; a bad file fails with one line naming the file and the key.
Repo-relative paths are resolved once, on load. The resolved config (defaults + overrides) is what gets
saved with every model and logged to MLflow.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

# We use no pydantic plugins; looking for them scans every installed package's entry points, a visible share of
# each cold `predict` (make bench). Set before pydantic is imported; an explicit setting in the environment wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import (  # noqa: E402
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from pipeline import LABELS, REPO_ROOT
from pipeline.cli import UserError

CONFIG_DIR = REPO_ROOT / "configs"
DATA_DIR_ENV = "HEADLINE_DATA_DIR"

T = TypeVar("T", bound=BaseModel)


def _known_label(label: str) -> str:
    if label not in LABELS:
        raise ValueError(f"unknown topic {label!r} (labels: {', '.join(LABELS)})")
    return label


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ValueError(f"bad regex {pattern!r} ({err})") from None
    return pattern


Label = Annotated[str, AfterValidator(_known_label)]
Regex = Annotated[str, AfterValidator(_regex)]
# a path in the repo (data/, models/): relative ones are resolved against the repo root once, here
RepoPath = Annotated[Path, AfterValidator(lambda p: p if p.is_absolute() else REPO_ROOT / p)]


class Config(BaseModel):
    # defer_build: a class builds its validator when first used, so `predict` pays only for the one it loads
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, defer_build=True)
    # keys an older version had and that meant nothing for prediction: dropped from a saved model's config
    # when it loads (pipeline.models.base), still unknown keys (errors) in configs/*.yaml
    RETIRED: ClassVar[frozenset[str]] = frozenset()


class DataConfig(Config):
    data_dir: str | None = None  # shared data root; $HEADLINE_DATA_DIR wins (see root())
    ynat_csv: str | None = "ynat/ynat_train.csv"  # under the data root; None loads ynat_hub_id instead
    ynat_hub_id: str = "klue/klue"
    ynat_hub_config: str = "ynat"
    # listing exports and RSS archives (title, section, listed_on, site); each file is a source of its own
    listing_csvs: tuple[str, ...] = ("listings/*.csv", "sources/*.csv")
    pages: tuple[str, ...] = ("listings/*.txt", "listings/*.html", "listings/*.htm")
    # Gold: only ever reported on and crowning the champion; never trains or tunes anything (pipeline.gold)
    gold_tsvs: tuple[str, ...] = ("gold/*.tsv",)
    # Human labels (title, label, source): the tune set. Labeling-function precisions are measured on all of
    # them; a hash-chosen share (`tune`) never trains and sets thresholds, weights and choices; the rest
    # (`fit`) are training rows that override the rules.
    annotations_tsv: str | None = "annotations/labels.tsv"
    annotation_tune_share: float = Field(0.5, gt=0, lt=1)
    headlines_csv: RepoPath = Path("data/interim/headlines.csv")
    labeled_csv: RepoPath = Path("data/processed/labeled.csv")
    manual_labels_csv: RepoPath = Path("data/manual/labels.csv")
    label_issues_csv: RepoPath = Path("data/review/label_issues.csv")

    def root(self) -> Path:
        """Where the shared data lives: $HEADLINE_DATA_DIR, else data_dir (relative to the repo)."""
        root = os.environ.get(DATA_DIR_ENV) or self.data_dir
        where = f"(set {DATA_DIR_ENV} or data_dir in configs/data.yaml)"
        if not root:
            raise UserError(f"data folder not set: export {DATA_DIR_ENV}=/path/to/data {where}")
        path = Path(root) if Path(root).is_absolute() else REPO_ROOT / root
        if not path.is_dir():
            raise UserError(f"data folder {path} does not exist {where}")
        return path


class Rule(Config):
    name: str  # reported in per-rule counts and stored with every label it produces
    label: Label
    patterns: tuple[Regex, ...] = Field(min_length=1)  # regexes over the normalised headline; any match votes
    exclude: tuple[Regex, ...] = ()  # regexes that veto this rule's vote
    provenance: str = ""  # where the terms came from (e.g. a pipeline.propose run), for reviewers
    # labels whose evidence this rule cannot weigh against (pipeline.labelmodel): politics words (대통령, 의원)
    # stand in a politician's criminal case too, which LABELING.md calls crime
    blind_to: tuple[Label, ...] = ()


class LabelConfig(Config):
    # The sources' own sections, each a labeling function whose weight is its precision on the annotations:
    # YNAT's human topics; Naver listing sections; the economic dailies' feed categories (an article may have
    # several, `economy|finance`). 생활문화 / Culture / culture / entertainment (weather, health, culture,
    # celebrities) are none of the four topics. Sections that mix topics vote nothing: Naver's Society (2025:
    # Social), World and IT; the dailies' society, international, it and opinion; every Chosun subsection
    # (court_law and incident hold political trials and accidents as well as crime: evidence, not labels).
    section_map: dict[str, Label] = {
        "정치": "politics", "경제": "business", "스포츠": "sports", "생활문화": "other",
        "Politics": "politics", "Economic": "business", "Culture": "other",
        "politics": "politics", "economy": "business", "stock": "business", "finance": "business",
        "industry": "business", "realestate": "business", "sports": "sports", "culture": "other",
        "entertainment": "other"}
    rules: tuple[Rule, ...] = ()
    prior_accuracy: float = Field(0.8, gt=0, lt=1)
    prior_strength: float = Field(10.0, gt=0)
    min_confidence: float = Field(0.6, ge=0, le=1)  # abstain (no label) below this posterior
    # no source has a crime section: a page's section must not outvote a crime rule (pipeline.labelmodel)
    sections_blind_to: tuple[Label, ...] = ("crime",)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> LabelConfig:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rule names must be unique")
        return self


class TfidfConfig(Config):
    char_ngram_min: int = Field(1, ge=1)  # character n-grams inside word boundaries (char_wb)
    char_ngram_max: int = Field(4, ge=1)
    # The second feature block: n-grams of the headline's words split into pieces. `subwords` is a BPE
    # vocabulary learned from the training headlines (tokenizers, Rust); `kiwi` is Kiwi's content morphemes;
    # `off` leaves characters alone. Subwords tied with Kiwi within noise (paired bootstrap) and load and predict
    # much faster; characters alone did worse: CHANGELOG.md (#12). Today's figures: MODEL_CARD.md.
    words: Literal["subwords", "kiwi", "off"] = "subwords"
    subword_vocab: int = Field(8000, ge=100)  # BPE vocabulary size; the sizes tried: CHANGELOG.md (#12)
    word_ngram_max: int = Field(2, ge=1)
    min_df: int = Field(2, ge=1)  # drop n-grams seen in fewer headlines (noise, names)
    max_features: int | None = Field(400_000, ge=1)  # per feature block
    sublinear_tf: bool = True
    C: float = Field(4.0, gt=0)  # inverse regularisation strength of the logistic regression
    class_weight: Literal["balanced"] | None = "balanced"  # crime is rare: weight classes inversely to frequency
    max_iter: int = Field(3000, ge=1)

    @model_validator(mode="after")
    def _ngram_range(self) -> TfidfConfig:
        if self.char_ngram_min > self.char_ngram_max:
            raise ValueError("char_ngram_min must not exceed char_ngram_max")
        return self


class KobertConfig(Config):
    # The offline build (when the checkpoint cannot be loaded) is sized so a fresh clone's `make train`
    # (venv, TF-IDF with audit, this, the ensemble) stays within its time budget on a small CPU machine with
    # every source (#19): KoBERT's vocabulary size, a small BERT pretrained for one pass over every headline
    # but gold and tune, few fine-tuning epochs, at most `teacher_rows` distilled headlines.
    # Timings: MODEL_CARD.md (phases of the kobert run).
    checkpoint: str = "skt/kobert-base-v1"  # Hub id or local directory (BERT checkpoint + spiece.model)
    offline_fallback: bool = True  # checkpoint unreachable: build a KoBERT-style model from our headlines
    pretrained_dir: RepoPath = Path("models/pretrained")  # cache of offline builds, keyed by corpus and recipe
    vocab_size: int = Field(8002, ge=16)
    hidden_size: int = Field(256, ge=8)
    # two layers, not four (#12): ONNX prediction on CPU is compute-bound, and halving the layers about doubled
    # the speed and halved the training at no measurable cost; one layer cost more: CHANGELOG.md
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    pretrain_epochs: int = Field(1, ge=1)  # masked-language-model passes over the headlines
    pretrain_lr: float = Field(1e-3, gt=0)
    mask_prob: float = Field(0.15, gt=0, lt=1)
    # distillation: the labeled rows, plus the headlines the label model left out with soft labels from a
    # teacher of another kind fit on the same training rows (configs/<teacher>.yaml); "none" turns it off
    teacher: str = "tfidf"
    teacher_rows: int = Field(10_000, ge=0)  # at most this many unlabeled headlines get soft labels (seeded sample)
    # at most this many labeled rows fine-tune (a seeded sample; class weights rebalance it): with every source
    # there are about 75k, and two epochs over all of them would take `make train` past its 30 minutes
    finetune_rows: int | None = Field(40_000, ge=1)
    max_length: int = Field(48, ge=4)  # pieces per headline incl. [CLS]/[SEP]; headlines are short
    batch_size: int = Field(64, ge=1)  # per device
    epochs: int = Field(2, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    patience: int = Field(2, ge=1)  # epochs without early-stopping macro-F1 gain before stopping
    early_stopping_fraction: float = Field(0.1, gt=0, lt=0.5)  # training rows held out for early stopping
    predict_batch_size: int = Field(128, ge=1)
    # Prediction runs an ONNX graph (no torch). Dynamic int8 was faster but cost more macro-F1 than the
    # tolerance allowed: CHANGELOG.md (#12)
    int8: bool = False

    @model_validator(mode="after")
    def _heads(self) -> KobertConfig:
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of heads ({self.heads})")
        return self

    # `seed` was a second seed of 13 beside TrainConfig's, for pretraining alone; now fit's seed (TrainConfig's,
    # the one source) seeds pretraining too, with the same default, so the cached offline builds stay valid
    RETIRED: ClassVar[frozenset[str]] = frozenset({"seed"})


class EnsembleConfig(Config):
    members: tuple[str, ...] = Field(("tfidf", "kobert"), min_length=2)


class TrainConfig(Config):
    model: str = "tfidf"  # model kind: tfidf, kobert or ensemble
    seed: int = 13  # split and model seed
    val_fraction: float = Field(0.1, gt=0, lt=0.5)  # stratified held-out share of the labeled rows
    experiment: str = "headline-topics"  # MLflow experiment name
    models_dir: RepoPath = Path("models")  # exports go to <models_dir>/<kind>; <models_dir>/current is the default
    sample_weighting: Literal["confidence", "none"] = "confidence"  # weigh rows by the label model's confidence
    audit_folds: int = Field(3, ge=0)  # out-of-fold folds for the label audit (confident learning); 0 = off
    learn_other: bool = True  # also train on headlines labeled `other` as a fifth class
    # Abstaining (pipeline.calibration): thresholds chosen on the annotations' tune part (pipeline.gold) so
    # this share of its in-scope headlines keeps a topic. Validation rows share the training distribution:
    # a threshold set there promises more coverage than new outlets get. The share was chosen on the tune
    # part (thresholds set on one half, checked on the other): 0.96 keeps accuracy on kept headlines and answers
    # `other` for clearly more `other` headlines than 0.97 (docs/evaluation.md; figures in MODEL_CARD.md).
    abstain_coverage: float = Field(0.96, gt=0, le=1)
    abstain_on: Literal["tune", "val"] = "tune"
    # Rows weighted by (source, label) so that no source dominates a topic: a source's rows of a label weigh
    # (n_label / (sources_label * n_source_label)) ** source_balance (0: off, 1: every source of a label
    # weighs the same in all). Chosen on the annotations' tune part (the values tried: CHANGELOG.md; which data
    # chooses what: docs/evaluation.md; figures: MODEL_CARD.md).
    source_balance: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _folds(self) -> TrainConfig:
        if self.audit_folds == 1:
            raise ValueError("audit_folds must be 0 (off) or at least 2")
        return self


# --- a saved model's model.json (read before its weights; pipeline.models.base) --------------------------
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Probability = Annotated[float, Field(ge=0, le=1)]


class Temperature(Config):
    method: Literal["temperature"]
    temperature: float = Field(gt=0)


class Isotonic(Config):
    method: Literal["isotonic"]
    curves: list[tuple[list[Probability], list[Probability]]]  # per label: thresholds x -> calibrated y


class Platt(Config):
    method: Literal["platt"]
    a: list[float]
    b: list[float]


class ModelMeta(Config):
    """What a saved model says about itself; hand edits that would break prediction are one-line errors."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True, allow_inf_nan=False)
    kind: str
    labels: list[Label] = Field(min_length=2)
    files: dict[str, Sha256] = Field(min_length=1)  # every file the model loads and its sha256
    config: dict[str, Any]
    calibration: Annotated[Temperature | Isotonic | Platt, Field(discriminator="method")] | None = None
    abstain_threshold: Probability | None = None
    other_threshold: Probability | None = None

    @model_validator(mode="after")
    def _widths(self) -> ModelMeta:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels repeat: {self.labels}")
        c, n = self.calibration, len(self.labels)
        widths = [len(c.curves)] if isinstance(c, Isotonic) else [len(c.a), len(c.b)] if isinstance(c, Platt) else []
        if any(w != n for w in widths):
            raise ValueError(f"calibration ({c.method}) is not for {n} labels")
        if isinstance(c, Isotonic) and any(len(x) != len(y) or not x or x != sorted(x) for x, y in c.curves):
            raise ValueError("isotonic curves need increasing thresholds, one value each")
        return self


def load_config(cls: type[T], path: Path | str | None = None, overrides: dict | None = None) -> T:
    """Defaults of `cls`, overridden by the YAML file at `path` (if given) and then `overrides`."""
    data = _read_yaml(Path(path)) if path is not None else {}
    return validate(cls, {**data, **(overrides or {})}, str(path) if path is not None else "defaults")


def validate(cls: type[T], data: Any, where: str) -> T:
    """`data` as a `cls`; the first problem as one line naming `where` and the key."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or cls.__name__
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        raise UserError(f"{where}: {key}: {message} (got {first['input']!r})"[:300]) from None


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).strip().splitlines()[0]})") from None
    if all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()):
        return {}  # comments only, as configs/train.yaml ships: no settings, and no YAML parser to import (predict)
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not valid YAML ({first})") from None
    if data is not None and not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys to values at the top level")
    return data or {}
