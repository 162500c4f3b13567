"""Label: weak labels for the headline table from labeling functions and a label model.

    python -m pipeline.label            # label data/interim/headlines.csv -> data/processed/labeled.csv
    python -m pipeline.label --report   # ... and print the labeling-function analysis table

Labeling functions (configs/labels.yaml; label meanings: ../shared/LABELING.md) are source-section
maps and pattern rules; pipeline.labelmodel combines their votes, each weighted by its precision on the
human annotations (pipeline.gold; gold is never read for this). The annotations' `fit` part and manual
labels (pipeline.manual; written by pipeline.review) override every rule. Gold titles and the annotations'
`tune` part are removed here, by dedupe key, before anything can train on them.
"""

import argparse
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import LABELS
from pipeline.cli import UserError, run
from pipeline.config import CONFIG_DIR, DataConfig, LabelConfig, load_config
from pipeline.gold import FIT, held_out_keys, read_annotations, read_gold
from pipeline.ingest import HEADLINE_COLUMNS
from pipeline.io import read_csv, write_csv
from pipeline.labelmodel import LabelModel, smoothed_accuracy
from pipeline.manual import read_manual
from pipeline.table import format_table
from pipeline.text import normalize_title

LABELED_COLUMNS = (*HEADLINE_COLUMNS, "label", "confidence", "rule", "votes")
MANUAL = "manual"
ANNOTATION = "annotation"

Vote = tuple[str, str]  # (labeling function name, label)


class Labeler:
    """Compiled labeling functions: `votes` is every function's say on one headline."""

    def __init__(self, cfg: LabelConfig):
        self.cfg = cfg
        self._rules = [(r, compile_patterns(r.patterns), compile_patterns(r.exclude)) for r in cfg.rules]

    @property
    def names(self) -> list[str]:
        return [f"section:{s}" for s in self.cfg.section_map] + [r.name for r in self.cfg.rules]

    def label_of(self, name: str) -> str:
        if name.startswith("section:"):
            return self.cfg.section_map[name.removeprefix("section:")]
        return next(r.label for r in self.cfg.rules if r.name == name)

    def votes(self, text: str, section: str = "") -> list[Vote]:
        votes = []
        # a feed may list an article in several categories (`economy|finance`): one vote per label they map to
        voted: set[str] = set()
        for part in section.split("|") if section else ():
            label = self.cfg.section_map.get(part)
            if label is not None and label not in voted:
                voted.add(label)
                votes.append((f"section:{part}", label))
        for rule, include, exclude in self._rules:
            if include.search(text) and not (exclude and exclude.search(text)):
                votes.append((rule.name, rule.label))
        return votes


def compile_patterns(patterns: Sequence[str]) -> re.Pattern | None:
    """One regex matching any of `patterns` (None when there are none)."""
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def labeled_votes(items: list[dict], headlines: list[dict], labeler: Labeler) -> list[tuple[str, list[Vote]]]:
    """(human label, votes) per annotated item; its section comes from the ingested headline with its key."""
    section = {r["key"]: r["section"] for r in headlines}
    norms = [normalize_title(g["title"]) for g in items]
    return [(g["label"], labeler.votes(n.text, section.get(n.key, ""))) for g, n in zip(items, norms, strict=True)]


@dataclass(frozen=True)
class FunctionStats:
    name: str
    label: str
    coverage: float  # share of headlines it votes on
    overlap: float  # share of its votes where another function also votes
    conflict: float  # share of its votes where another function votes a different label
    tune_hits: int  # annotated items it votes on (gold is never read here)
    tune_precision: float  # share of those whose human label is its label
    tune_recall: float  # share of annotated items with its label that it catches
    accuracy: float  # smoothed precision: its weight in the label model


def analyse(names: list[str], label_of, corpus: list[list[Vote]], gold: list[tuple[str, list[Vote]]],
            cfg: LabelConfig) -> list[FunctionStats]:
    """Snorkel-style analysis of every labeling function on the corpus and on human-labeled items."""
    n = max(len(corpus), 1)
    votes_of, overlaps, conflicts = Counter(), Counter(), Counter()
    for votes in corpus:
        for name, label in votes:
            votes_of[name] += 1
            overlaps[name] += len(votes) > 1
            conflicts[name] += any(other != label for _, other in votes)
    gold_per_label = Counter(label for label, _ in gold)
    stats = []
    for name in names:
        label = label_of(name)
        hits = [g for g, votes in gold if any(v == name for v, _ in votes)]
        correct = sum(g == label for g in hits)
        stats.append(FunctionStats(
            name=name, label=label, coverage=votes_of[name] / n,
            overlap=overlaps[name] / max(votes_of[name], 1), conflict=conflicts[name] / max(votes_of[name], 1),
            tune_hits=len(hits), tune_precision=correct / len(hits) if hits else float("nan"),
            tune_recall=correct / gold_per_label[label] if gold_per_label[label] else float("nan"),
            accuracy=smoothed_accuracy(correct, len(hits), cfg.prior_accuracy, cfg.prior_strength),
        ))
    return stats


def format_stats(stats: list[FunctionStats]) -> str:
    header = ("function", "label", "cover", "overlap", "confl", "anno n", "prec", "recall", "weight")
    rows = [(s.name, s.label, f"{s.coverage:.1%}", f"{s.overlap:.1%}", f"{s.conflict:.1%}", s.tune_hits,
             f"{s.tune_precision:.2f}", f"{s.tune_recall:.2f}", f"{s.accuracy:.2f}") for s in stats]
    return format_table(header, rows, right=(False, False, *[True] * 7), gap=" ",
                        min_widths=(22, 9, 6, 7, 6, 6, 5, 6, 6))


def label_rows(rows: list[dict], votes: list[list[Vote]], model: LabelModel, min_confidence: float,
               exclude_keys: set[str], manual: dict[str, tuple[str, str]] | None = None) -> tuple[list[dict], int]:
    """Label every headline not in `exclude_keys`; `manual` maps a key to (label, who decided it: MANUAL or
    ANNOTATION), which overrides the rules. Returns (labeled rows, number excluded)."""
    manual = manual or {}
    out = []
    for row, row_votes in zip(rows, votes, strict=True):
        if row["key"] in exclude_keys:
            continue
        vote_text = ";".join(f"{name}={label}" for name, label in row_votes)
        if row["key"] in manual:
            label, who = manual[row["key"]]
            out.append({**row, "label": label, "confidence": 1.0, "rule": who, "votes": vote_text})
            continue
        label, confidence = model.vote(row_votes, min_confidence)
        agreeing = "+".join(name for name, vote in row_votes if vote == label) if label else ""
        out.append({**row, "label": label, "confidence": round(confidence, 4), "rule": agreeing,
                    "votes": vote_text})
    return out, len(rows) - len(out)


def rule_counts(rows: list[dict]) -> Counter:
    """How many labels each function produced (a label agreed by two functions counts for both)."""
    counts: Counter = Counter()
    for row in rows:
        if row["label"]:
            counts.update(row["rule"].split("+"))
        elif row["votes"]:
            counts["abstained"] += 1
    return counts


def summary(rows: list[dict], names: list[str], n_gold: int) -> str:
    labels = Counter(r["label"] for r in rows)
    covered = sum(v for k, v in labels.items() if k)
    lines = [f"{len(rows)} headlines ({n_gold} gold and tune-part titles removed); labeled {covered} "
             f"({covered / max(len(rows), 1):.1%}), unlabeled {labels['']}"]
    lines += [f"  {t:<10} {labels[t]:>7}" for t in LABELS]
    counts = rule_counts(rows)
    lines.append("labels per function:")
    lines += [f"  {name:<28} {counts[name]:>7}" for name in [*names, ANNOTATION, MANUAL, "abstained"]]
    return "\n".join(lines)


def source_table(rows: list[dict]) -> str:
    """Label counts per source x label (and unlabeled): which source a topic's labels come from."""
    counts = Counter((r["source"], r["label"]) for r in rows)
    sources = sorted({r["source"] for r in rows})
    columns = [*LABELS, ""]
    rows = []
    for source in sources:
        row = [counts[(source, c)] for c in columns]
        rows.append([source, *row, sum(row)])
    header = ["source", *(c or "none" for c in columns), "total"]
    return format_table(header, rows, right=[False] + [True] * (len(columns) + 1), gap=" ",
                        min_widths=[6] + [8] * (len(columns) + 1))


@dataclass
class Labeling:
    rows: list[dict]  # the labeled table (gold and the annotations' tune part removed)
    stats: list[FunctionStats]
    n_gold: int  # headlines removed: gold and tune-part titles


def label_table(headlines: list[dict], gold: list[dict], cfg: LabelConfig, manual: dict[str, str],
                annotations: list[dict] = ()) -> Labeling:
    """Pure core: analyse the functions, build the label model, label every headline that is neither gold
    nor in the annotations' tune part.

    Function precisions are measured on all annotations (pipeline.gold; never on gold). The annotations'
    `fit` part overrides the rules, and manual labels override both; an annotated headline missing from
    the table joins it with its annotation's source."""
    headlines = [*headlines, *missing_annotated(headlines, annotations)]
    labeler = Labeler(cfg)
    votes = [labeler.votes(r["text"], r["section"]) for r in headlines]
    excluded = held_out_keys(gold, annotations)
    corpus = [v for r, v in zip(headlines, votes, strict=True) if r["key"] not in excluded]
    stats = analyse(labeler.names, labeler.label_of, corpus, labeled_votes(list(annotations), headlines, labeler), cfg)
    blind = {name: cfg.sections_blind_to for name in labeler.names if name.startswith("section:")}
    blind.update({rule.name: rule.blind_to for rule in cfg.rules if rule.blind_to})
    model = LabelModel(LABELS, {s.name: s.accuracy for s in stats}, blind)
    decided = {a["key"]: (a["label"], ANNOTATION) for a in annotations if a["part"] == FIT}
    decided.update({key: (label, MANUAL) for key, label in manual.items()})
    rows, n_excluded = label_rows(headlines, votes, model, cfg.min_confidence, excluded, decided)
    return Labeling(rows, stats, n_excluded)


def missing_annotated(headlines: list[dict], annotations: list[dict]) -> list[dict]:
    """Headline rows for annotated titles the sources did not bring (so a fit-part label is never lost)."""
    known = {r["key"] for r in headlines}
    rows = []
    for a in annotations:
        if a["key"] not in known:
            known.add(a["key"])
            norm = normalize_title(a["title"])
            rows.append({"title": " ".join(a["title"].split()), "text": norm.text, "tags": "|".join(norm.tags),
                         "key": a["key"], "source": a["source"], "source_file": a["file"], "site": "", "date": "",
                         "section": "", "n_seen": 1})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG_DIR / "labels.yaml", type=Path)
    parser.add_argument("--data", default=CONFIG_DIR / "data.yaml", type=Path)
    parser.add_argument("--report", action="store_true", help="print the labeling-function analysis table")
    args = parser.parse_args()
    data_cfg = load_config(DataConfig, args.data)
    cfg = load_config(LabelConfig, args.config)
    headlines_path = data_cfg.headlines_csv
    if not headlines_path.is_file():
        raise UserError(f"no headline table at {headlines_path}; run `make ingest` first")
    headlines = read_csv(headlines_path, required=HEADLINE_COLUMNS)
    gold = read_gold(data_cfg)
    result = label_table(headlines, gold, cfg, read_manual(data_cfg.manual_labels_csv),
                         read_annotations(data_cfg, gold))
    out = data_cfg.labeled_csv
    write_csv(out, LABELED_COLUMNS, result.rows)
    write_csv(out.with_name("labeling_functions.csv"), list(FunctionStats.__dataclass_fields__),
              [s.__dict__ for s in result.stats])
    print(summary(result.rows, Labeler(cfg).names, result.n_gold))
    if args.report:
        print(format_stats(result.stats))
        print("labels per source:")
        print(source_table(result.rows))
    print(f"-> {out}")


if __name__ == "__main__":
    run(main)
