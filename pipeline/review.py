"""Review loop: a person labels the most useful headlines, one at a time, in the terminal.

    python -m pipeline.review [--limit 50]        (make review)

Audit suspects (data/review/label_issues.csv, from `make train`) come first, then the unlabeled
headlines the model is least sure about; headlines decided before are not asked again. Each answer is
appended to data/manual/labels.csv (its format: pipeline.manual) and flushed to disk at once, so Ctrl-C
loses nothing answered.
Manual labels override every rule on the next `make label` / `make train`.
"""

import argparse
import sys
from pathlib import Path
from typing import TextIO

from pipeline.cli import require_stdin, run
from pipeline.config import CONFIG_DIR, DataConfig, load_config
from pipeline.io import read_csv
from pipeline.manual import SKIP, append_decision, decided_keys

ANSWERS = {"p": "politics", "c": "crime", "s": "sports", "b": "business", "o": "other", "k": SKIP}
PROMPT = "label? [p]olitics [c]rime [s]ports [b]usiness [o]ther, [k] skip, [q] quit: "
UNCERTAIN_POOL = 5000  # unlabeled headlines scored for uncertainty (a deterministic slice keeps it quick)


def suspects(data_cfg: DataConfig) -> list[dict]:
    path = data_cfg.label_issues_csv
    if not path.is_file():
        return []
    return [{"key": r["key"], "title": r["title"],
             "why": f"labeled {r['label']} ({r['rule']}), model says {r['suggested']} {float(r['suggested_p']):.2f}"}
            for r in read_csv(path, required=("key", "title", "label", "rule", "suggested", "suggested_p"))]


def uncertain(data_cfg: DataConfig, model_dir: Path, limit: int) -> list[dict]:
    """Unlabeled headlines with the smallest margin between the model's two best topics."""
    labeled = data_cfg.labeled_csv
    if not labeled.is_file() or not model_dir.exists():
        return []
    from pipeline.models import load_model

    pool = [r for r in read_csv(labeled, required=("key", "title", "label")) if not r["label"]][:UNCERTAIN_POOL]
    if not pool:
        return []
    model = load_model(model_dir)
    proba = model.predict_proba([r["title"] for r in pool])
    top2 = proba.argsort(axis=1)[:, -2:]
    margins = proba[range(len(pool)), top2[:, 1]] - proba[range(len(pool)), top2[:, 0]]
    order = margins.argsort()[:limit]
    return [{"key": pool[i]["key"], "title": pool[i]["title"],
             "why": f"unlabeled, model unsure: {model.labels[top2[i, 1]]} vs {model.labels[top2[i, 0]]}"}
            for i in order]


def candidates(data_cfg: DataConfig, model_dir: Path, limit: int) -> list[dict]:
    done = decided_keys(data_cfg.manual_labels_csv)
    first: dict[str, dict] = {}  # each headline once, where it first comes up
    for item in suspects(data_cfg) + uncertain(data_cfg, model_dir, limit):
        first.setdefault(item["key"], item)
    return [item for key, item in first.items() if key not in done][:limit]


def ask(stdin: TextIO, stdout: TextIO) -> str | None:
    """One valid answer (a label or skip); None on quit or end of input."""
    while True:
        stdout.write(PROMPT)
        stdout.flush()
        line = stdin.readline()
        if not line:
            return None
        answer = line.strip().lower()[:1]
        if answer == "q":
            return None
        if answer in ANSWERS:
            return ANSWERS[answer]
        stdout.write("  please answer p, c, s, b, o, k or q\n")


def review(data_cfg: DataConfig, limit: int, stdin: TextIO, stdout: TextIO,
           model_dir: Path | None = None) -> int:
    from pipeline.store import default_model

    items = candidates(data_cfg, model_dir or default_model(), limit)
    if not items:
        stdout.write("nothing to review: run `make train` first (it writes the audit file)\n")
        return 0
    out = data_cfg.manual_labels_csv
    answered = 0
    try:
        for n, item in enumerate(items, start=1):
            stdout.write(f"\n[{n}/{len(items)}] {item['title']}\n  {item['why']}\n")
            label = ask(stdin, stdout)
            if label is None:
                break
            append_decision(out, item["key"], item["title"], label)
            answered += 1
    except KeyboardInterrupt:
        stdout.write("\n")
    stdout.write(f"{answered} decision(s) saved to {out}; they apply from the next `make train`\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=CONFIG_DIR / "data.yaml", type=Path)
    parser.add_argument("--limit", type=int, default=50, help="at most this many headlines")
    args = parser.parse_args()
    require_stdin("review reads its answers from it: run it in a terminal (make review) or pipe answers in")
    return review(load_config(DataConfig, args.data), args.limit, sys.stdin, sys.stdout)


if __name__ == "__main__":
    run(main)
