"""Predict: label headlines with a saved model.

    python -m pipeline.predict "[속보] 경찰, 살인 피의자 구속영장 신청"       -> crime 0.97
    python -m pipeline.predict --json "제목"                               -> {"title", "label", "confidence", "scores"}
    python -m pipeline.predict --input headlines.txt > out.jsonl          (one headline per line; - for stdin)
    python -m pipeline.predict --model models/tfidf "제목"
    python -m pipeline.predict --no-abstain "제목"                          (always one of the four topics)

The default model is models/current (made by `make train`). Stays light: never reads configs/ and, for
the TF-IDF model, never imports torch, transformers or mlflow. A bad line in --input gets an object with
an `error` key in its place, so output lines match input lines one to one.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

import numpy as np

from pipeline import OTHER, REPO_ROOT
from pipeline.calibration import decide
from pipeline.cli import UserError, run
from pipeline.models import load_model
from pipeline.models.base import TopicModel
from pipeline.text import title_problem

DEFAULT_MODEL = REPO_ROOT / "models" / "current"
BATCH = 512


def predict_titles(model: TopicModel, titles: Sequence[str], abstain: bool = True) -> list[dict]:
    """Core: one result dict per title, in order; invalid titles get an `error` instead of a label.

    `label` is a topic, or `other` when the model abstains (unless `abstain` is False); `scores` always
    holds the four topics' calibrated probabilities; `confidence` is the answered topic's score, or for
    `other` one minus the best topic's score.
    """
    problems = [title_problem(t) for t in titles]
    valid = [t for t, p in zip(titles, problems, strict=True) if p is None]
    proba = model.predict_proba(valid) if valid else np.zeros((0, len(model.labels)))
    topics = [i for i, label in enumerate(model.labels) if label != OTHER]
    answers = iter(zip(decide(proba, model.labels, model.threshold, abstain, model.other_threshold),
                       np.round(proba[:, topics], 4).tolist(), strict=True))
    names = [model.labels[i] for i in topics]
    results = []
    for title, problem in zip(titles, problems, strict=True):
        if problem is not None:
            results.append({"title": title, "label": None, "confidence": None, "scores": None, "error": problem})
            continue
        label, row = next(answers)
        scores = dict(zip(names, row, strict=True))
        confidence = scores[label] if label != OTHER else round(1 - max(row), 4)
        results.append({"title": title, "label": label, "confidence": confidence, "scores": scores})
    return results


def open_input(path: str):
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot read input file {path}: {err.strerror}") from None


def predict_stream(model: TopicModel, source, out, abstain: bool = True) -> tuple[int, int]:
    """JSON Lines for every input line; returns (lines, errors). Progress bar only for long runs."""
    from tqdm import tqdm

    n = errors = 0
    bar = None  # created after the first batch, so model warm-up does not count as "long"
    lines = (line.rstrip("\r\n") for line in source)
    try:
        while batch := list(islice(lines, BATCH)):
            for result in predict_titles(model, batch, abstain):
                out.write(json.dumps(result, ensure_ascii=False) + "\n")
                errors += "error" in result
            n += len(batch)
            if bar is None:
                bar = tqdm(unit=" headlines", file=sys.stderr, delay=1.0, mininterval=0.5, initial=n)
            else:
                bar.update(len(batch))
    except UnicodeDecodeError:
        raise UserError(f"input is not UTF-8 text (stopped after {n} lines)") from None
    finally:
        if bar is not None:
            bar.close()
    return n, errors


def resolve_model_dir(path: str | None) -> Path:
    model_dir = Path(path) if path else DEFAULT_MODEL
    if not model_dir.exists():
        if path:
            raise UserError(f"model directory not found: {model_dir}")
        raise UserError("no trained model yet: run `make train` (or pass --model DIR)")
    return model_dir


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.predict", description=__doc__.splitlines()[0])
    parser.add_argument("title", nargs="?", help="one headline")
    parser.add_argument("--input", metavar="PATH", help="file with one headline per line, or - for stdin")
    parser.add_argument("--model", metavar="DIR", help="saved model directory (default: models/current)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-abstain", action="store_true", help="always answer one of the four topics")
    args = parser.parse_args()
    if (args.title is None) == (args.input is None):
        raise UserError("give either one headline or --input PATH")
    if args.title is not None and (problem := title_problem(args.title)):
        raise UserError(problem)

    source = open_input(args.input) if args.input is not None else None  # input errors first: cheaper
    model = load_model(resolve_model_dir(args.model))
    if source is not None:
        try:
            n, errors = predict_stream(model, source, sys.stdout, not args.no_abstain)
        finally:
            if source is not sys.stdin:
                source.close()
        if errors:
            print(f"{errors} of {n} lines could not be classified (see their error field)", file=sys.stderr)
        return
    result = predict_titles(model, [args.title], not args.no_abstain)[0]
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"{result['label']} {result['confidence']:.3f}")


if __name__ == "__main__":
    run(main)
