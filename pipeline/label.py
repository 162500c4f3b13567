"""Label: weak labels for the headline table from labeling functions.

    python -m pipeline.label [--config configs/labels.yaml] [--data configs/data.yaml]

Labeling functions (configs/labels.yaml; the meaning of each topic is ../shared/LABELING.md):
- section map: the source's own section (YNAT 정치/경제/스포츠, Naver Politics/Economic) votes for
  a topic. Rule name `section:<section>`.
- keyword/pattern rules: regexes over the normalised headline vote for their topic unless one of
  their `exclude` patterns matches. Crime has no source section anywhere, so it comes from these.

Conflict policy (one, everywhere): only the votes with the highest priority count; if they all name
the same topic the headline gets it (rule column lists every agreeing rule), otherwise it gets no
label (rule column `conflict:`...). Crime rules outrank section maps, following LABELING.md's
tie-break "crime over politics or business".

Gold titles (data.gold_tsv) are removed here, by dedupe key, before anything can train on them.
Output: data/processed/labeled.csv (the headline table + label, rule); prints coverage and per-rule counts.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipeline import TOPICS
from pipeline.cli import run
from pipeline.config import CONFIG_DIR, DataConfig, LabelConfig, data_root, load_config, repo_path
from pipeline.ingest import COLUMNS as HEADLINE_COLUMNS
from pipeline.io import read_csv, write_csv
from pipeline.text import normalize_title

COLUMNS = (*HEADLINE_COLUMNS, "label", "rule")


@dataclass(frozen=True)
class Vote:
    rule: str
    label: str
    priority: int


class Labeler:
    """Compiled labeling functions; `votes` and `resolve` are the whole labeling logic."""

    def __init__(self, cfg: LabelConfig):
        self.cfg = cfg
        self._rules = [(r, _compile(r.patterns), _compile(r.exclude)) for r in cfg.rules]

    @property
    def rule_names(self) -> list[str]:
        return [f"section:{s}" for s in self.cfg.section_map] + [r.name for r in self.cfg.rules]

    def votes(self, text: str, section: str = "") -> list[Vote]:
        votes = []
        if section in self.cfg.section_map:
            votes.append(Vote(f"section:{section}", self.cfg.section_map[section], self.cfg.section_priority))
        for rule, include, exclude in self._rules:
            if include.search(text) and not (exclude and exclude.search(text)):
                votes.append(Vote(rule.name, rule.label, rule.priority))
        return votes

    @staticmethod
    def resolve(votes: list[Vote]) -> tuple[str, str]:
        """(label, rule) by the conflict policy; label '' means no label."""
        if not votes:
            return "", ""
        top = max(v.priority for v in votes)
        winners = [v for v in votes if v.priority == top]
        names = "+".join(v.rule for v in winners)
        if len({v.label for v in winners}) > 1:
            return "", f"conflict:{names}"
        return winners[0].label, names

    def label(self, text: str, section: str = "") -> tuple[str, str]:
        return self.resolve(self.votes(text, section))


def _compile(patterns: tuple[str, ...]) -> re.Pattern | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def read_gold(data_cfg: DataConfig) -> list[dict]:
    """Gold rows (title, label[, source]) for evaluation; [] when no gold set is configured."""
    if not data_cfg.gold_tsv:
        return []
    return read_csv(data_root(data_cfg) / data_cfg.gold_tsv, required=("title", "label"), delimiter="\t")


def gold_keys(data_cfg: DataConfig) -> set[str]:
    """Dedupe keys of every gold title: these headlines must never be trained on."""
    return {normalize_title(r["title"]).key for r in read_gold(data_cfg)}


def label_rows(rows: list[dict], labeler: Labeler, exclude_keys: set[str]) -> tuple[list[dict], int]:
    """Label every headline not in `exclude_keys`; returns (labeled rows, number excluded)."""
    out = []
    for row in rows:
        if row["key"] in exclude_keys:
            continue
        label, rule = labeler.label(row["text"], row["section"])
        out.append({**row, "label": label, "rule": rule})
    return out, len(rows) - len(out)


def rule_counts(rows: list[dict]) -> Counter:
    """How many labels each rule produced (a label agreed by two rules counts for both)."""
    counts: Counter = Counter()
    for row in rows:
        if row["label"]:
            counts.update(row["rule"].split("+"))
        elif row["rule"]:
            counts["conflict"] += 1
    return counts


def report(rows: list[dict], labeler: Labeler, n_gold: int) -> str:
    labels = Counter(r["label"] for r in rows)
    covered = sum(v for k, v in labels.items() if k)
    lines = [f"{len(rows)} headlines ({n_gold} gold titles removed); labeled {covered} "
             f"({covered / max(len(rows), 1):.1%}), unlabeled {labels['']}"]
    lines += [f"  {t:<10} {labels[t]:>7}" for t in TOPICS]
    counts = rule_counts(rows)
    lines.append("per rule:")
    lines += [f"  {name:<28} {counts[name]:>7}" for name in [*labeler.rule_names, "conflict"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG_DIR / "labels.yaml", type=Path)
    parser.add_argument("--data", default=CONFIG_DIR / "data.yaml", type=Path)
    args = parser.parse_args()
    data_cfg = load_config(DataConfig, args.data)
    labeler = Labeler(load_config(LabelConfig, args.config))
    headlines = read_csv(repo_path(data_cfg.headlines_csv), required=HEADLINE_COLUMNS)
    rows, n_gold = label_rows(headlines, labeler, gold_keys(data_cfg))
    out = repo_path(data_cfg.labeled_csv)
    write_csv(out, COLUMNS, rows)
    print(report(rows, labeler, n_gold))
    print(f"-> {out}")


if __name__ == "__main__":
    run(main)
