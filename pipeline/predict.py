"""Predict: label headlines with a saved model.

    python -m pipeline.predict "[속보] 경찰, 살인 피의자 구속영장 신청"       -> crime 0.97
    python -m pipeline.predict --json "제목"                               -> {"title", "label", "confidence", "scores"}
    python -m pipeline.predict "제목 1" "제목 2" "제목 3"                    (one answer line each, in order)
    python -m pipeline.predict --input headlines.txt > out.jsonl          (one headline per line; - for stdin)
    python -m pipeline.predict --model models/tfidf "제목"
    python -m pipeline.predict --config my-train.yaml "제목"                (that config's <models_dir>/current)
    python -m pipeline.predict --no-abstain "제목"                          (always one of the four topics)
    python -m pipeline.predict --input headlines.txt --summary [PATH] > out.jsonl
                                          (batch figures beside the gold's, drift warnings: stderr, or PATH)

The default model is <models_dir>/current (made by `make train`; models/current unless configs/train.yaml,
or the train config given as --config, sets models_dir: pipeline.store). That is all predict reads from
configs/: where the models directory is, never a model setting, for a model directory describes itself
(model.json). Stays light: for the TF-IDF model it never imports torch, transformers or mlflow. A bad line in
--input (one that is not UTF-8 too) gets an object with an `error` key in its place, so output lines match
input lines one to one. So does a bad title among several given as arguments (plain output: `error: <why>`
in its place); then the command ends with one `error:` line on stderr and exit 2, as it does for a single
bad title.
"""

import argparse
import json
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np

from pipeline import OTHER, summary
from pipeline.calibration import answer_labels
from pipeline.cli import UserError, flush_stdout, require_stdin, run, write_stdout
from pipeline.models import load_model
from pipeline.models.base import TopicModel
from pipeline.store import default_model
from pipeline.text import title_problem

BATCH = 8192
UTF8_BOM = b"\xef\xbb\xbf"  # some editors start a UTF-8 file with it; not part of line 1


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
    answers = iter(zip(answer_labels(proba, model.labels, model.threshold, abstain, model.other_threshold),
                       rounded_scores(proba[:, topics]).tolist(), strict=True))
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


def rounded_scores(scores: np.ndarray) -> np.ndarray:
    """Scores to 4 decimals that still sum to at most 1: rounding four of them can overshoot by up to 0.0002
    when `other` is near 0 (121 of 54,000 headlines did), so the excess comes off each row's best topic."""
    rounded = np.round(scores, 4)
    excess = np.maximum(np.round(rounded.sum(axis=1) - 1, 4), 0)
    rounded[np.arange(len(rounded)), rounded.argmax(axis=1)] -= excess
    return np.round(rounded, 4)


def json_lines(results: Sequence[dict]) -> str:
    """One JSON object per line. JSON leaves U+0085, U+2028 and U+2029 raw inside strings, but many line
    readers (str.splitlines, editors) break lines there; escaped, every reader sees one object per line."""
    text = "".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results)
    return text.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def open_input(path: str) -> BinaryIO:
    """The --input source as bytes: each line is decoded on its own (decode_lines)."""
    if path == "-":
        require_stdin("pipe the headlines in (`--input - < headlines.txt`) or give --input FILE")
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as err:
        raise UserError(f"cannot read input file {path}: {err.strerror}") from None


def not_utf8(number: int, line: bytes, err: UnicodeDecodeError) -> dict:
    """The result object that stands in for an input line that is not UTF-8."""
    return {"title": None, "label": None, "confidence": None, "scores": None,
            "error": f"line {number}: not valid UTF-8 (byte 0x{line[err.start]:02x} at column {err.start + 1})"}


def decode_lines(raw: list[bytes], first: int) -> tuple[list[str], dict[int, dict]]:
    """The lines as text without their line ends, and for each line that is not UTF-8 an error result by its
    position in `raw` (it is left out of the text). `first` is the line number of raw[0]."""
    try:  # fast path: the whole batch is UTF-8, one try for all of it
        return [line.decode("utf-8").rstrip("\r\n") for line in raw], {}
    except UnicodeDecodeError:
        pass
    titles: list[str] = []
    bad: dict[int, dict] = {}
    for i, line in enumerate(raw):
        try:
            titles.append(line.decode("utf-8").rstrip("\r\n"))
        except UnicodeDecodeError as err:
            bad[i] = not_utf8(first + i, line, err)
    return titles, bad


def reference_for(model: TopicModel, titles: Sequence[str]) -> dict:
    """What `--summary` compares a batch with: the figures of the model's own answers on `titles` (the gold
    headlines), with and without abstaining, for model.info["batch_reference"]. Call it once the
    thresholds are final: the abstain share depends on them. No titles (no gold configured): {}, which
    `--summary` reports as no reference rather than comparing with empty figures."""
    if not any(title_problem(t) is None for t in titles):
        return {}
    return {"abstain": summary.reference(predict_titles(model, titles, True)),
            "no_abstain": summary.reference(predict_titles(model, titles, False))}


def answer_batch(model: TopicModel, raw: list[bytes], first: int, abstain: bool = True,
                 stats: bool = False) -> tuple[str, int, dict | None]:
    """JSON Lines for one batch of input lines (`first` is the line number of raw[0]), its error count and,
    when `stats`, its summary counts (pipeline.summary.batch_stats; small, so workers send them back cheaply)."""
    titles, bad = decode_lines(raw, first)
    results = predict_titles(model, titles, abstain)
    if bad:
        labeled = iter(results)
        results = [bad[i] if i in bad else next(labeled) for i in range(len(raw))]
    return (json_lines(results), sum("error" in result for result in results),
            summary.batch_stats(results) if stats else None)


def input_batches(source: BinaryIO) -> Iterator[tuple[list[bytes], int]]:
    """(lines, line number of the first) in batches of BATCH; a UTF-8 BOM before line 1 is dropped."""
    first = 1
    while raw := list(islice(source, BATCH)):
        if first == 1:
            raw[0] = raw[0].removeprefix(UTF8_BOM)
        yield raw, first
        first += len(raw)


_SHARED: tuple[TopicModel, bool, bool] | None = None  # (model, abstain, stats), inherited by forked workers


def _start_worker(threads: int) -> None:
    _SHARED[0].in_worker(threads)


def _answer_shared(raw: list[bytes], first: int) -> tuple[str, int, dict | None]:
    model, abstain, stats = _SHARED
    return answer_batch(model, raw, first, abstain, stats)


def answered_batches(model: TopicModel, source: BinaryIO, abstain: bool, workers: int,
                     stats: bool = False) -> Iterator[tuple[str, int, dict | None, int]]:
    """(JSON Lines, errors, summary counts or None, lines) per batch, in input order. Models that allow it are
    run by `workers` forked processes: they share the loaded model copy-on-write (nothing loads again), and
    at most two batches per worker are read ahead of what is written. Workers count for the summary where
    they answer (`stats`): the parent never parses their JSON back."""
    batches = input_batches(source)
    if workers <= 1 or not model.fork_safe or "fork" not in multiprocessing.get_all_start_methods():
        for raw, first in batches:
            yield (*answer_batch(model, raw, first, abstain, stats), len(raw))
        return
    global _SHARED
    _SHARED = (model, abstain, stats)
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    with multiprocessing.get_context("fork").Pool(workers, _start_worker, (threads,)) as pool:
        pending: deque = deque()
        for raw, first in batches:
            pending.append((pool.apply_async(_answer_shared, (raw, first)), len(raw)))
            while len(pending) > 2 * workers or (pending and pending[0][0].ready()):
                done, lines = pending.popleft()
                yield (*done.get(), lines)
        for done, lines in pending:
            yield (*done.get(), lines)


def predict_stream(model: TopicModel, source: BinaryIO, out: TextIO, abstain: bool = True,
                   workers: int = 1, on_stats: Callable[[dict], None] | None = None) -> tuple[int, int]:
    """One JSON object per input line, in order, and returns (lines, errors). A line ends at \\n (a \\r
    before it is dropped; a last line without one counts). A line that is not UTF-8 gets an `error` object
    naming it and the lines after it carry on. Progress bar only for long runs. `on_stats`, when given,
    receives each batch's summary counts (the output is the same bytes either way)."""
    from tqdm import tqdm

    n = errors = 0
    bar = None  # created after the first batch, so model warm-up does not count as "long"
    try:
        batches = answered_batches(model, source, abstain, workers, stats=on_stats is not None)
        for text, batch_errors, stats, lines in batches:
            write_stdout(out, text)  # a full disk: one line, not a traceback
            if on_stats is not None:
                on_stats(stats)
            errors += batch_errors
            n += lines
            if bar is None:
                bar = tqdm(unit=" headlines", file=sys.stderr, delay=1.0, mininterval=0.5, initial=n)
            else:
                bar.update(lines)
    finally:
        if bar is not None:
            bar.close()
    return n, errors


def resolve_model_dir(path: str | None, config: Path | str | None = None) -> Path:
    """--model DIR, else the default model of the models directory the train config sets (pipeline.store)."""
    model_dir = Path(path) if path else default_model(config)
    if not model_dir.exists():
        if path:
            raise UserError(f"model directory not found: {model_dir}")
        raise UserError(f"no trained model yet ({model_dir}): run `make train` (or pass --model DIR)")
    return model_dir


def summary_target(path: str | bool | None) -> Path | None:
    """Where --summary writes: None for stderr. A path that cannot be written is refused before the run,
    not after an hour of predicting; the file itself is written only at the end."""
    if path is None or path is True:
        return None
    target = Path(path)
    if target.is_dir():
        raise UserError(f"--summary {path}: is a directory; give a file path")
    parent = target.parent
    if not parent.is_dir():
        raise UserError(f"--summary {path}: directory {parent} does not exist")
    if not os.access(target if target.exists() else parent, os.W_OK):
        raise UserError(f"--summary {path}: not writable")
    return target


def write_summary(text: str, target: Path | None) -> None:
    if target is None:
        sys.stderr.write(text)
        return
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot write summary to {target}: {err.strerror}") from None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.predict", description=__doc__.splitlines()[0])
    parser.add_argument("titles", nargs="*", metavar="title", help="headlines: one answer each, in order")
    parser.add_argument("--input", metavar="PATH", help="file with one headline per line, or - for stdin")
    parser.add_argument("--model", metavar="DIR", help="saved model directory (default: <models_dir>/current)")
    parser.add_argument("--config", metavar="PATH", help="train config whose models_dir holds the default model "
                        "(default: configs/train.yaml; only its models_dir is used)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-abstain", action="store_true", help="always answer one of the four topics")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), metavar="N",
                        help="processes for --input, for models that fork safely (default: this machine's cores)")
    parser.add_argument("--summary", nargs="?", const=True, metavar="PATH",
                        help="with --input: batch figures beside the gold's and drift warnings, on stderr "
                             "(or written to PATH)")
    args = parser.parse_args()
    if args.titles and args.input is not None:
        raise UserError("give headlines or --input PATH, not both")
    if args.model and args.config:  # --config only says where the default model is: with --model it would be ignored
        raise UserError("give --model DIR or --config PATH (whose models_dir holds the default model), not both")
    if not args.titles and args.input is None:
        raise UserError("give one or more headlines, or --input PATH")
    if args.summary is not None and args.input is None:
        raise UserError("--summary summarises a batch: use it with --input PATH")
    target = summary_target(args.summary)
    if len(args.titles) == 1 and (problem := title_problem(args.titles[0])):
        raise UserError(problem)  # before the model loads: nothing else to answer

    source = open_input(args.input) if args.input is not None else None  # input errors first: cheaper
    model = load_model(resolve_model_dir(args.model, args.config))
    if source is not None:
        totals = summary.empty_stats()  # a running total: no batch's results are kept

        def add(stats: dict) -> None:
            nonlocal totals
            totals = summary.merge_stats(totals, stats)

        try:
            n, errors = predict_stream(model, source, sys.stdout, not args.no_abstain, args.workers,
                                       on_stats=add if args.summary is not None else None)
        finally:
            if args.input != "-":
                source.close()
        if errors:
            print(f"{errors} of {n} lines could not be classified (see their error field)", file=sys.stderr)
        if args.summary is not None:
            sys.stdout.flush()  # the JSON Lines are complete before the summary shows beside them
            ref, why_none = summary.pick_reference(model.info, not args.no_abstain)
            write_summary(summary.format_summary(totals, ref, why_none), target)
        return
    results = predict_titles(model, args.titles, not args.no_abstain)
    if args.json:
        write_stdout(sys.stdout, json_lines(results))
    else:
        write_stdout(sys.stdout, "".join(plain_line(result) + "\n" for result in results))
    bad = [(i, result["error"]) for i, result in enumerate(results, 1) if "error" in result]
    if bad:
        flush_stdout()  # every answer is out before the error line
        first, why = bad[0]
        raise UserError(f"{len(bad)} of {len(results)} titles could not be classified (title {first}: {why})")


def plain_line(result: dict) -> str:
    """A result as `label confidence`, or `error: <why>` for a title that could not be classified."""
    if "error" in result:
        return f"error: {result['error']}"
    return f"{result['label']} {result['confidence']:.3f}"


if __name__ == "__main__":
    run(main)
