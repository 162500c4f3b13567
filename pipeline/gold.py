"""The evaluation protocol: gold only reports, human annotations steer. Statistics with intervals.

Gold (`gold/*.tsv`) is report-only: it is scored per file and per `source` and crowns the champion
(pipeline.promote), and nothing is ever chosen on it. The human annotations (`annotations/labels.tsv`) are
the tune set: each title goes, by a hash of its dedupe key (stable across runs and machines, no seed), to
`tune` (never trains; abstain thresholds, ensemble weights, config choices are made on it) or `fit`
(training rows that override the rules). A title in gold is dropped from the annotations: gold wins.
Statistics are numpy percentile bootstraps over items; a paired one (same resampled items) compares two models.
"""

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, LABELS, TOPICS
from pipeline.cli import UserError
from pipeline.config import DataConfig
from pipeline.io import read_csv_numbered
from pipeline.names import GOLD_FILE, GOLD_SOURCE, REPORT, REPORT_SOURCE_NAMES, REPORT_SOURCES, TUNE, gold_slice
from pipeline.text import normalize_title

FIT = "fit"  # the annotations' two parts: TUNE (pipeline.names, a split too) and FIT
MIN_TOPIC_ITEMS = 20  # a slice's macro-F1 averages the topics it has at least this many items of
# One letter per label, so a run's gold answers fit in one registry tag (promote pairs runs from tags).
CODES = {label: label[0] for label in LABELS}
DECODE = {code: label for label, code in CODES.items()}


def read_labeled_tsv(path: Path) -> list[dict]:
    """Rows (title, label[, source]) of a gold or annotation file. A label outside LABELING.md's five is an
    error naming the line, before anything trains."""
    numbered = read_csv_numbered(path, required=("title", "label"), delimiter="\t")
    for line, row in numbered:
        if row["label"] not in LABELS:
            raise UserError(f"{path}:{line}: unknown label {row['label']!r} (labels: {', '.join(LABELS)})")
    return [{**row, "source": row.get("source") or path.stem, "file": path.stem} for _, row in numbered]


def read_gold(data_cfg: DataConfig) -> list[dict]:
    """Every gold file's rows (title, label, source, file), files in name order; [] when none is configured."""
    root = data_cfg.root() if data_cfg.gold_tsvs else None
    paths = sorted({p for pattern in data_cfg.gold_tsvs for p in root.glob(pattern) if p.is_file()}) if root else []
    return [row for path in paths for row in read_labeled_tsv(path)]


def held_out_keys(gold: Sequence[dict], tune: Sequence[dict] = ()) -> set[str]:
    """Dedupe keys of the titles that never train: every gold title and, of the annotation rows in `tune`,
    those of the tune part (a row without a `part` counts as tune). The one definition of that set."""
    held = [*gold, *(t for t in tune if t.get("part", TUNE) == TUNE)]
    return {normalize_title(row["title"]).key for row in held}


def read_annotations(data_cfg: DataConfig, gold: Sequence[dict]) -> list[dict]:
    """The human annotations (title, label, source, key, part), without any title that is also gold."""
    if not data_cfg.annotations_tsv:
        return []
    path = data_cfg.root() / data_cfg.annotations_tsv
    if not path.is_file():
        raise UserError(f"annotations not found: {path} (check annotations_tsv in configs/data.yaml)")
    return annotation_rows(read_labeled_tsv(path), gold, data_cfg.annotation_tune_share)


def annotation_rows(rows: Sequence[dict], gold: Sequence[dict], tune_share: float) -> list[dict]:
    """Annotations with their key and part (`tune`/`fit`); gold titles and repeated keys dropped (first wins)."""
    forbidden, seen, out = held_out_keys(gold), set(), []
    for row in rows:
        key = normalize_title(row["title"]).key
        if key and key not in forbidden and key not in seen:
            seen.add(key)
            out.append({**row, "key": key, "part": TUNE if hashed_share(key) < tune_share else FIT})
    return out


def hashed_share(key: str) -> float:
    """A dedupe key's place in [0, 1): the same on every run and machine, so `[속보] X` and `X` agree."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def slices(gold: Sequence[dict]) -> dict[str, list[dict]]:
    """What gold is reported on: the union (REPORT), each file (gold_file/<stem>) and each source
    (gold_source/<source>), in file order; names are metric-safe (pipeline.names)."""
    out: dict[str, list[dict]] = {REPORT: list(gold)} if gold else {}
    for kind, field in ((GOLD_FILE, "file"), (GOLD_SOURCE, "source")):
        for value in dict.fromkeys(g[field] for g in gold):
            out[gold_slice(kind, metric_safe(value))] = [g for g in gold if g[field] == value]
    return out


def metric_safe(name: str) -> str:
    """A name MLflow takes inside a metric key (letters, digits, _ - .): anything else becomes _."""
    return re.sub(r"[^\w.\-]", "_", name)


def scored_topics(labels: Sequence[str]) -> tuple[str, ...]:
    """The topics a slice has at least MIN_TOPIC_ITEMS of (all four when it has none that many): a macro-F1 over
    topics with a handful of items would be noise."""
    counts = Counter(labels)
    return tuple(t for t in TOPICS if counts[t] >= MIN_TOPIC_ITEMS) or TOPICS


def items_digest(titles: Sequence[str]) -> str:
    """Identity of an ordered item list: two runs' answers pair up only when this matches."""
    return hashlib.sha256("\n".join(normalize_title(t).key for t in titles).encode("utf-8")).hexdigest()[:16]


def encode(labels: Sequence[str]) -> str:
    return "".join(CODES[label] for label in labels)


def decode(codes: str) -> list[str]:
    return [DECODE[c] for c in codes]


SOURCE_CODES = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def encode_sources(sources: Sequence[str]) -> dict[str, str]:
    """Registry tags naming each report item's gold source: the distinct names, and one character per item."""
    names = list(dict.fromkeys(sources))
    if len(names) > len(SOURCE_CODES):
        raise ValueError(f"{len(names)} gold sources; tags hold at most {len(SOURCE_CODES)}")
    return {REPORT_SOURCE_NAMES: "|".join(names),
            REPORT_SOURCES: "".join(SOURCE_CODES[names.index(s)] for s in sources)}


def decode_sources(tags: dict) -> list[str] | None:
    """Each report item's gold source from a version's tags; None when it was tagged before sources were."""
    if REPORT_SOURCES not in tags:
        return None
    names = tags.get(REPORT_SOURCE_NAMES, "").split("|")
    return [names[SOURCE_CODES.index(c)] for c in tags[REPORT_SOURCES]]


def macro_f1_rows(y_true: np.ndarray, y_pred: np.ndarray, topics: Sequence[str] = TOPICS) -> np.ndarray:
    """Macro-F1 over `topics` for each row of (samples, items) index arrays; vectorised so thousands of
    resamples cost milliseconds. Matches sklearn's zero_division=0 convention."""
    scores = []
    for k in (TOPICS.index(t) for t in topics):
        tp = ((y_true == k) & (y_pred == k)).sum(axis=-1)
        fp = ((y_true != k) & (y_pred == k)).sum(axis=-1)
        fn = ((y_true == k) & (y_pred != k)).sum(axis=-1)
        denom = 2 * tp + fp + fn
        scores.append(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))
    return np.mean(scores, axis=0)


def _indices(labels: Sequence[str]) -> np.ndarray:
    index = {t: i for i, t in enumerate(TOPICS)}
    return np.array([index.get(label, -1) for label in labels])


@dataclass(frozen=True)
class Interval:
    value: float  # on the items as they are
    lo: float
    hi: float

    def __str__(self) -> str:
        return f"{self.value:+.4f} [95% CI {self.lo:+.4f}, {self.hi:+.4f}]"


def bootstrap(values: Callable[[np.ndarray], np.ndarray], n: int) -> Interval:
    """Percentile 95% interval of a statistic; `values(idx)` scores each row of resampled item indices."""
    point = float(values(np.arange(n)[None, :])[0])
    if n == 0:
        return Interval(point, float("nan"), float("nan"))
    dist = values(np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_SAMPLES, n)))
    return Interval(point, float(np.percentile(dist, 2.5)), float(np.percentile(dist, 97.5)))


def macro_f1_interval(y_true: Sequence[str], y_pred: Sequence[str], topics: Sequence[str] = TOPICS) -> Interval:
    t, p = _indices(y_true), _indices(y_pred)
    return bootstrap(lambda idx: macro_f1_rows(t[idx], p[idx], topics), len(t))


def coverage_interval(flags: Sequence[bool]) -> Interval:
    """Interval of a share, e.g. coverage: in-scope items that keep a topic."""
    f = np.asarray(flags, dtype=float)
    return bootstrap(lambda idx: f[idx].mean(axis=-1) if len(f) else np.zeros(len(idx)), len(f))


def paired_difference(y_true: Sequence[str], pred_a: Sequence[str], pred_b: Sequence[str],
                      topics: Sequence[str] = TOPICS) -> Interval:
    """Macro-F1 (over `topics`) of b minus a on the same resampled items: b is better beyond noise when lo > 0."""
    if not len(y_true) == len(pred_a) == len(pred_b):
        raise ValueError("paired answers must cover the same items")
    t, a, b = _indices(y_true), _indices(pred_a), _indices(pred_b)
    return bootstrap(lambda idx: macro_f1_rows(t[idx], b[idx], topics) - macro_f1_rows(t[idx], a[idx], topics), len(t))
