"""Every metric, split and registered-version tag name, defined once (docs/models.md: What a run logs).

A metric name is `<section>/<name>`: MLflow 3.17's chart view makes a collapsible section of each prefix before
the last `/` (checked in its UI bundle and in tests/test_browser.py), so a run's charts come in the few sections
below rather than one alphabetical list of 126. An evaluation split's metrics are `<split>/<name>`
(pipeline.evaluate): report/macro_f1, tune/f1_crime, val/coverage; a gold slice is `gold_file/<stem>` or
`gold_source/<source>`, its metrics `<slice>_<name>` (gold_file/dev_macro_f1), so every file sits in one
`gold_file` section and every source in one `gold_source` section.
No imports: every module may use it.
"""

# evaluation splits
REPORT = "report"  # every gold file together: report only, it crowns the champion
TUNE = "tune"  # the annotations' tune part (tuning: thresholds and weights were chosen on it)
VAL = "val"  # held-out weak labels of the training table (agreement with the rules)
GOLD_FILE, GOLD_SOURCE = "gold_file", "gold_source"  # one gold file, one gold source
SLICE_KINDS = (GOLD_FILE, GOLD_SOURCE)

# the other sections of a run's metrics
CALIBRATION = "calibration"  # calibration/ece_<method>, calibration/abstain_threshold, calibration/other_threshold
AUDIT = "audit"  # audit/issues_<label>, audit/issues_total
RULE_COUNTS = "labels"  # labels/<rule>: training rows each labeling rule labeled
TIME = "time"  # time/<phase>_seconds, time/<split>_headlines_per_second
DATA = "data"  # data/train_rows, data/val_rows
EPOCHS = "epochs"  # per-epoch curves a kind logs while it trains: epochs/<phase>_<name>, against step


def metric(split: str, name: str) -> str:
    """A metric's name: `<section>/<name>`, and for a gold slice `<slice>_<name>` (its section is its kind)."""
    return f"{key_prefix(split)}{name}"


def key_prefix(split: str) -> str:
    """What a split's metric names start with: `report/`, or `gold_file/dev_` for a slice."""
    return f"{split}_" if is_slice(split) else f"{split}/"


def gold_slice(kind: str, value: str) -> str:
    """A gold slice's split name (`value` already metric-safe: no `/` in it)."""
    return f"{kind}/{value}"


def is_slice(name: str) -> bool:
    """Whether a split (or a metric of one) is a gold file's or source's."""
    return name.startswith(tuple(f"{kind}/" for kind in SLICE_KINDS))


def slices_in(keys) -> list[str]:
    """The gold slices named among metric (or tag) keys: a slice is what has an interval on its macro-F1
    (<slice>_kept_macro_f1 is a figure of a slice, not one), files first, each kind sorted."""
    found = {k.removesuffix("_macro_f1_lo") for k in keys if is_slice(k) and k.endswith("_macro_f1_lo")}
    return sorted(found, key=lambda n: (not n.startswith(f"{GOLD_FILE}/"), n))


def slice_label(name: str) -> str:
    """`gold_file/dev` -> `file dev`: how a table names a slice."""
    return name.removeprefix("gold_").replace("/", " ", 1)


def speed(split: str) -> str:
    """Headlines per second a split was scored at."""
    return metric(TIME, f"{split.replace('/', '_')}_headlines_per_second")


SCORE = metric(REPORT, "macro_f1")  # what crowns the champion
TRAIN_SECONDS = metric(TIME, "train_seconds")
TRAIN_ROWS, VAL_ROWS = metric(DATA, "train_rows"), metric(DATA, "val_rows")
ABSTAIN_THRESHOLD = metric(CALIBRATION, "abstain_threshold")
OTHER_THRESHOLD = metric(CALIBRATION, "other_threshold")

EXPERIMENT = "headline-topics"  # the MLflow experiment every training run goes to (TrainConfig.experiment)
MODEL_NAME = "headline-topic"  # one registered model: every kind's versions, told apart by the KIND tag
CHAMPION = "champion"  # an alias of that one model, so exactly one version holds it
CHAMPION_URI = f"models:/{MODEL_NAME}@{CHAMPION}"  # what serve and score answer with unless told otherwise

# run and registered-version tags (pipeline.tracking, pipeline.registry write them; promote, compare, card read).
# A version also carries its report, tune and slice metrics as tags under their metric names (report/macro_f1...).
KIND = "model_kind"
CHECKPOINT = "checkpoint"
TRAIN_DATA = "train_data_sha256"
MODEL_BYTES = "model_bytes"
HEADLINES_PER_SECOND = "headlines_per_second"  # the version's validation speed
REPORT_ITEMS = metric(REPORT, "items")  # digest of the report's in-scope items, in order
REPORT_TRUTH = metric(REPORT, "truth")  # their gold labels, one letter each (pipeline.gold.encode)
REPORT_ANSWERS = metric(REPORT, "answers")  # the version's forced answers on them
REPORT_SOURCES = metric(REPORT, "sources")  # each item's gold source, one character each
REPORT_SOURCE_NAMES = metric(REPORT, "source_names")  # the source names those characters index, `|`-joined
