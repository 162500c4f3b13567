"""The manual-labels file (data/manual/labels.csv): a person's decisions, one per line, latest wins.

Written by the review loop (pipeline.review), read by the labeler (pipeline.label), where a decision
overrides every rule. A `skip` answer withdraws the headline's earlier decision.
"""

import csv
import os
from datetime import UTC, datetime
from pathlib import Path

from pipeline import LABELS
from pipeline.io import read_csv

MANUAL_COLUMNS = ("key", "title", "label", "decided_at")
SKIP = "skip"


def read_manual(path: Path) -> dict[str, str]:
    """Latest manual decision per headline key (skips dropped); {} when there is no file yet."""
    if not path.is_file():
        return {}
    decisions = {}
    for row in read_csv(path, required=MANUAL_COLUMNS):
        if row["label"] in LABELS:
            decisions[row["key"]] = row["label"]
        elif row["label"] == SKIP:
            decisions.pop(row["key"], None)
    return decisions


def decided_keys(path: Path) -> set[str]:
    """Keys of every headline with a line in the file, skips included (they were asked already)."""
    return {r["key"] for r in read_csv(path, required=MANUAL_COLUMNS)} if path.is_file() else set()


def append_decision(path: Path, key: str, title: str, label: str) -> None:
    """Append one decision and force it to disk before the next question."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if new:
            writer.writerow(MANUAL_COLUMNS)
        writer.writerow([key, title, label, datetime.now(UTC).isoformat(timespec="seconds")])
        fh.flush()
        os.fsync(fh.fileno())
