"""Propose: mine labeling-rule patterns from data, for a human to review.

    python -m pipeline.propose --label crime                     # default model: <models_dir>/current
    python -m pipeline.propose --label crime --model models/tfidf --top 40 --min-count 5 --confidence 0.8

Ranks the content morphemes (Kiwi unigrams and bigrams) over-represented among the headlines the
model is confident are `--label` but no `--label` rule covers: the topic's words the rules miss. Gold
titles are kept out of the pool, so no rule is mined from gold. Writes data/review/proposed_<label>.csv
and changes nothing else: a person adds the reviewed patterns to configs/labels.yaml with a
`provenance:` line. Kiwi's semantic neighbours of the best terms are listed to check by hand.
"""

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import LABELS
from pipeline.cli import UserError, run
from pipeline.config import CONFIG_DIR, DataConfig, LabelConfig, Rule, load_config
from pipeline.gold import held_out_keys, read_gold
from pipeline.io import read_csv, write_csv
from pipeline.label import Labeler, compile_patterns
from pipeline.models import load_model
from pipeline.predict import resolve_model_dir
from pipeline.table import format_table

PRIOR = 10.0  # pseudo-headlines at the pool rate added to every term's counts (smoothing)
N_EXAMPLES = 3
NEIGHBOUR_TERMS = 10  # how many of the best unigram proposals get Kiwi neighbours
# Nouns and verbs (not bound nouns): what a pattern can be written for; also the tags tried when a
# bare form is ambiguous in Kiwi's dictionary (e.g. 먹/VV vs 먹/NNG).
NEIGHBOUR_TAGS = ("NNG", "NNP", "VV")
PROPOSAL_COLUMNS = ("rank", "label", "term", "n_target", "n_all", "n_covered", "precision", "lift", "examples",
                    "provenance")


@dataclass(frozen=True)
class Proposal:
    term: str  # one content morpheme, or two adjacent ones joined by a space
    n_target: int  # confident, uncovered headlines containing it
    n_all: int  # pool headlines containing it
    n_covered: int  # headlines a target rule already covers that contain it
    precision: float  # n_target / n_all (raw)
    lift: float  # smoothed precision over the pool's target rate (the ranking)
    examples: tuple[str, ...]  # up to N_EXAMPLES confident-uncovered headlines, most confident first


@dataclass(frozen=True)
class Neighbour:
    term: str  # the proposed term it is a neighbour of
    form: str
    tag: str
    score: float  # Kiwi's cosine similarity
    n_all: int
    n_target: int
    matched: bool  # a target rule pattern already matches it
    n_uncovered: int = 0  # pool headlines with it that no target rule covers: what a rule on it would add
    example: str = ""  # one of those headlines


def terms_of(morphemes: str) -> set[str]:
    """Unigrams and adjacent-pair bigrams of one headline's space-joined morphemes."""
    tokens = morphemes.split()
    return set(tokens) | {f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)}


def count_terms(term_sets: Iterable[set[str]], mask: Iterable[bool] | None = None) -> Counter:
    """Headline frequency of every term (a term twice in one headline counts once), over the headlines
    where `mask` is true (all when None)."""
    counts: Counter = Counter()
    for terms, keep in zip(term_sets, repeat(True) if mask is None else mask, strict=False):
        if keep:
            counts.update(terms)
    return counts


def rule_regex(rules: Iterable[Rule]) -> re.Pattern | None:
    """One regex for all include patterns of `rules` (None when there are none)."""
    return compile_patterns([p for r in rules for p in r.patterns])


def matched_by(known: re.Pattern | None, term: str) -> bool:
    """Whether the rules already catch the term; bigrams are tried with and without their space,
    since the headline may write them either way (구속 영장 / 구속영장)."""
    return bool(known) and any(known.search(t) for t in {term, term.replace(" ", "")})


def _has_word(term: str) -> bool:
    # A term needs one morpheme of two or more characters that is not a number: numbers name no topic,
    # and one-syllable morphemes (대 in 40대, 명, 년) would match inside countless words as a pattern.
    return any(len(tok) > 1 and not tok.isdigit() for tok in term.split())


def propose_terms(texts: Sequence[str], morphemes: Sequence[str], target_proba: Sequence[float],
                  covered: Sequence[bool], min_count: int = 5, confidence: float = 0.8, top: int = 40,
                  known: re.Pattern | None = None, prior: float = PRIOR) -> list[Proposal]:
    """Rank the terms over-represented among confident, uncovered target headlines.

    `texts` are shown as examples; `morphemes` are the same headlines' space-joined content morphemes;
    `target_proba` the model's probability of the target label; `covered` whether a target rule fires;
    `known` the target rules' include patterns (terms they match are dropped). Pure: no IO.
    """
    n = len(texts)
    if not (len(morphemes) == len(target_proba) == len(covered) == n):
        raise ValueError("texts, morphemes, target_proba and covered must have the same length")
    proba = np.asarray(target_proba, dtype=float)
    target = [bool(p >= confidence) and not c for p, c in zip(proba, covered, strict=True)]
    n_target_total = sum(target)
    if n == 0 or n_target_total == 0:
        return []
    base = n_target_total / n
    sets = [terms_of(m) for m in morphemes]
    n_all, n_target, n_covered = count_terms(sets), count_terms(sets, target), count_terms(sets, covered)

    # lift: the term's share of targets, shrunk towards the pool rate `base` by `prior` pseudo-headlines (so a
    # term seen five times does not beat one seen in a hundred), over that rate
    lift = {}
    for term, k in n_target.items():
        if k >= min_count and _has_word(term) and not matched_by(known, term):
            lift[term] = float((k + prior * base) / (n_all[term] + prior) / base)
    # only terms more frequent among the targets than in the pool; ties: more evidence first
    chosen = sorted((t for t, v in lift.items() if v > 1), key=lambda t: (-lift[t], -n_target[t], t))[:top]

    # examples: the most confident target headlines first, so the reviewer sees the clearest cases
    examples: dict[str, list[str]] = {t: [] for t in chosen}
    for i in sorted((i for i in range(n) if target[i]), key=lambda i: -proba[i]):
        for term in sets[i] & examples.keys():
            if len(examples[term]) < N_EXAMPLES:
                examples[term].append(texts[i])
    return [Proposal(term=t, n_target=n_target[t], n_all=n_all[t], n_covered=n_covered[t],
                     precision=n_target[t] / n_all[t], lift=lift[t], examples=tuple(examples[t])) for t in chosen]


def similar_morphemes(kiwi: Any, form: str, n: int) -> list[tuple[str, str, float]]:
    """Up to `n` (form, tag, score) noun/verb neighbours of `form` by Kiwi's embeddings; [] when Kiwi
    does not know the form."""
    for query in (form, *((form, tag) for tag in NEIGHBOUR_TAGS)):
        try:
            found = kiwi.most_similar_morphemes(query, top_n=max(4 * n, 10))  # room for filtered tags
        except ValueError:  # unknown, or ambiguous without a tag: try the next query
            continue
        out: list[tuple[str, str, float]] = []
        seen = {form}
        for m in found:
            tag = str(m.tag)
            if tag.startswith(NEIGHBOUR_TAGS) and m.form not in seen:
                seen.add(m.form)
                out.append((m.form, tag, float(m.score)))
        return out[:n]
    return []


def neighbours(kiwi: Any, terms: Iterable[str], n_all: Mapping[str, int], n_target: Mapping[str, int], n: int,
               known: re.Pattern | None = None, n_uncovered: Mapping[str, int] | None = None,
               examples: Mapping[str, str] | None = None) -> list[Neighbour]:
    """Kiwi neighbours of each term with their pool counts (`n_all`, `n_target`, `n_uncovered`: unigram counts)."""
    n_uncovered, examples = n_uncovered or {}, examples or {}
    return [Neighbour(term=term, form=form, tag=tag, score=score, n_all=n_all.get(form, 0),
                      n_target=n_target.get(form, 0), matched=matched_by(known, form),
                      n_uncovered=n_uncovered.get(form, 0), example=examples.get(form, ""))
            for term in terms for form, tag, score in similar_morphemes(kiwi, term, n)]


def rule_seeds(rules: Iterable[Rule]) -> list[str]:
    """The plain Hangul words among the rules' patterns: the accepted terms whose Kiwi neighbours
    `--seed-neighbours` proposes. Look-arounds and groups (qualifiers such as `보석 ?(청구|신청)`) are
    removed before the alternatives are split, so vetoed words never become seeds."""
    seeds: list[str] = []
    for rule in rules:
        for pattern in rule.patterns:
            bare = re.sub(r"\(\?<?[!=](?:[^()]|\([^()]*\))*\)", "", pattern)  # look-arounds, one level nested
            bare = re.sub(r"\([^()]*\)| \?", "", bare)  # remaining groups and optional spaces
            for word in bare.split("|"):
                if re.fullmatch(r"[가-힣]{2,}", word) and word not in seeds:
                    seeds.append(word)
    return seeds


def format_proposals(proposals: Sequence[Proposal]) -> str:
    rows = [(str(i), p.term, str(p.n_target), str(p.n_all), str(p.n_covered), f"{p.precision:.2f}", f"{p.lift:.1f}",
             p.examples[0] if p.examples else "") for i, p in enumerate(proposals, 1)]
    header = ("#", "term", "n_target", "n_all", "n_covered", "precision", "lift", "example")
    return format_table(header, rows, (True, False, True, True, True, True, True, False), ragged_last=True)


def format_neighbours(found: Sequence[Neighbour]) -> str:
    rows = [(n.term, n.form, n.tag, f"{n.score:.3f}", str(n.n_all), str(n.n_target), str(n.n_uncovered),
             "yes" if n.matched else "", n.example) for n in found]
    header = ("term", "neighbour", "tag", "score", "n_all", "n_target", "n_uncovered", "rule matches", "example")
    return format_table(header, rows, (False, False, False, True, True, True, True, False, False), ragged_last=True)


def provenance(label: str, kind: str, model_dir: Path, info: Mapping[str, Any], confidence: float,
               today: date | None = None) -> str:
    """Which command, model and data proposed the terms: goes with the rule into labels.yaml."""
    run_id = info.get("mlflow_run_id")
    model = f"{kind} run={run_id}" if run_id else f"{kind} dir={model_dir}"
    data = f" data={info['train_data_sha256'][:12]}" if info.get("train_data_sha256") else ""
    return (f"pipeline.propose label={label} model={model}{data} confidence={confidence} "
            f"on {(today or date.today()).isoformat()}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.propose", description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="crime", choices=LABELS, help="label to propose patterns for")
    parser.add_argument("--model", metavar="DIR", help="saved model directory (default: <models_dir>/current, "
                        "models_dir as configs/train.yaml sets it)")
    parser.add_argument("--top", type=int, default=40, help="how many terms to propose")
    parser.add_argument("--min-count", type=int, default=5, help="confident uncovered headlines a term needs")
    parser.add_argument("--confidence", type=float, default=0.8, help="model probability that counts as confident")
    parser.add_argument("--neighbours", type=int, default=5, help="Kiwi neighbours per top unigram (0: none)")
    parser.add_argument("--seed-neighbours", action="store_true",
                        help="also list Kiwi neighbours of the words the label's rules already use, found in the pool")
    parser.add_argument("--source", help="only headlines of this source (ynat, page, or a listing file's stem, "
                        "e.g. naver_sections_2026-06-05, which looks most like what users label)")
    parser.add_argument("--data", default=CONFIG_DIR / "data.yaml", type=Path)
    parser.add_argument("--labels", default=CONFIG_DIR / "labels.yaml", type=Path)
    args = parser.parse_args()
    if args.top < 1 or args.min_count < 1 or args.neighbours < 0 or not 0 < args.confidence <= 1:
        raise UserError("--top and --min-count must be at least 1, --neighbours at least 0, --confidence in (0, 1]")

    data_cfg = load_config(DataConfig, args.data)
    label_cfg = load_config(LabelConfig, args.labels)
    labeled_path = data_cfg.labeled_csv
    if not labeled_path.is_file():
        raise UserError(f"no labeled data at {labeled_path}; run `make label` first")
    model_dir = resolve_model_dir(args.model)
    rows = read_csv(labeled_path, required=("title", "text", "key", "section"))
    # gold titles only, to keep them out of the pool: a rule mined from gold headlines would inflate
    # its own gold precision (its weight in the label model). Gold labels are never read.
    gold = held_out_keys(read_gold(data_cfg))
    pool = [r for r in rows if r["key"] not in gold]
    if len(pool) < len(rows):
        print(f"dropped {len(rows) - len(pool)} gold titles from the pool (stale table? rerun `make label`)")
    if args.source:
        pool = [r for r in pool if r.get("source") == args.source]
        if not pool:
            raise UserError(f"no headlines of source {args.source!r} in {labeled_path}")
    model = load_model(model_dir)
    if args.label not in model.labels:
        raise UserError(f"model {model_dir} has no {args.label!r} class (labels: {', '.join(model.labels)})")

    from pipeline.models.tfidf import kiwi, morphemes

    print(f"scoring {len(pool)} headlines with the {model.kind} model {model_dir} ...", flush=True)
    proba = model.predict_proba([r["title"] for r in pool])[:, model.labels.index(args.label)]
    labeler = Labeler(label_cfg)
    covered = [any(label == args.label and not name.startswith("section:")
                   for name, label in labeler.votes(r["text"], r["section"])) for r in pool]
    morphemes = morphemes([r["text"] for r in pool])
    rules = [r for r in label_cfg.rules if r.label == args.label]
    known = rule_regex(rules)
    proposals = propose_terms([r["title"] for r in pool], morphemes, proba, covered, args.min_count,
                              args.confidence, args.top, known)

    confident = proba >= args.confidence
    target = [bool(c) and not v for c, v in zip(confident, covered, strict=True)]
    n_target = sum(target)
    print(f"{int(confident.sum())} headlines with p({args.label}) >= {args.confidence}; {n_target} of them not "
          f"covered by a {args.label} rule ({n_target / max(len(pool), 1):.2%} of {len(pool)}); "
          f"{sum(covered)} covered in all")
    print(f"\nproposed terms for {args.label} (lift: smoothed share of confident uncovered headlines / pool share)")
    print(format_proposals(proposals) if proposals else "(none: try a lower --min-count or --confidence)")

    heads = [p.term for p in proposals if " " not in p.term][:NEIGHBOUR_TERMS]
    sets = [set(m.split()) for m in morphemes]  # unigrams: Kiwi neighbours are single morphemes
    n_all, n_in_target = count_terms(sets), count_terms(sets, target)
    if args.neighbours and heads:
        found = neighbours(kiwi(), heads, n_all, n_in_target, args.neighbours, known)
        print("\nneighbours (to check by hand)")
        print(format_neighbours(found) if found else "(Kiwi knows none of these terms)")
    if args.seed_neighbours:
        uncovered = [not c for c in covered]
        examples: dict[str, str] = {}
        for row, terms, keep in zip(pool, sets, uncovered, strict=True):
            for term in terms if keep else ():
                examples.setdefault(term, row["title"])
        found = neighbours(kiwi(), rule_seeds(rules), n_all, n_in_target, max(args.neighbours, 1),
                           known, count_terms(sets, uncovered), examples)
        # what a person can accept: words the rules miss that the pool actually uses, most used first
        found = sorted((f for f in found if f.n_uncovered and not f.matched), key=lambda f: -f.n_uncovered)
        unique = list({f.form: f for f in reversed(found)}.values())[::-1]
        print("\nneighbours of the rules' own words, used in uncovered headlines (to check by hand)")
        print(format_neighbours(unique) if unique else "(none found in the pool)")

    stamp = provenance(args.label, model.kind, model_dir, model.info, args.confidence)
    # beside the audit's label_issues.csv: everything under data/review/ waits for a person
    out = data_cfg.label_issues_csv.parent / f"proposed_{args.label}.csv"
    write_csv(out, PROPOSAL_COLUMNS, [{**asdict(p), "rank": i, "label": args.label, "precision": round(p.precision, 4),
                              "lift": round(p.lift, 3), "examples": " | ".join(p.examples), "provenance": stamp}
                             for i, p in enumerate(proposals, 1)])
    print(f"\n{len(proposals)} proposals -> {out}")
    print(f"to accept: write the reviewed terms as patterns of a {args.label} rule in {args.labels} with "
          f'`provenance: "{stamp}, reviewed <date> by <you>"`, then `make label` reports its gold precision')


if __name__ == "__main__":
    run(main)
