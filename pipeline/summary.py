"""The batch summary of `predict --input ... --summary`: a batch's answers next to the same figures on the
gold, and a warning when the batch looks unlike anything the model was measured on.

Three parts, all plain numbers so `predict` stays light (numpy only):
- `batch_stats(results)`: counts that add up batch by batch (`merge_stats`), so millions of lines are
  summarised without keeping their results;
- `reference(results)`: the same figures on the gold answers, with intervals, computed when the model trains
  and saved in model.json (`info["batch_reference"]`, built by `pipeline.predict.reference_for`);
- `drift_warnings` and `format_summary`.

The test: each figure's difference between batch and gold gets an interval that adds both samples' noise
(MOVER, Zou & Donner 2008: the square root of the two intervals' squared half-widths, side by side; for
shares that is Newcombe's hybrid score interval for a difference of proportions). A warning fires when that
99% interval lies wholly on the worrying side of zero: more low-confidence answers, more abstaining, lower
mean confidence. One-sided at 99% is a 0.5% false alarm per signal, so a batch drawn like the gold
warns about 1.5% of the time at most whatever its size (the intervals are approximate: 0.7-1.6% in
simulation); a 50-line batch needs a large shift, a million-line one a shift beyond the gold's own noise.
Topic shares get the same test but only a mark in the table: a sports feed is meant to be mostly sports,
and a topic mix says nothing about whether the answers hold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from pipeline import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, OTHER, TOPICS

LOW_CUT = 0.5  # calibrated confidence below it: the model expects to be wrong more often than right
EDGES = (LOW_CUT, 0.7, 0.9)  # confidence bins [0, .5) [.5, .7) [.7, .9) [.9, 1]: the first is the low share
Z_SHOWN = 1.959963984540054  # 95% intervals in the table
Z_TEST = 2.5758293035489004  # 99% intervals behind a warning (used one-sided: 0.5% per signal)
# The signals a warning may fire on, and the side that worries: +1 when the batch is higher than gold.
WARN_SIDE = {"low": +1, "abstain": +1, "mean_confidence": -1}


def bin_names() -> list[str]:
    edges = (0.0, *EDGES, 1.0)
    names = [f"confidence {lo:.1f}–{hi:.1f}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    names[0] = f"confidence < {LOW_CUT} (low)"
    return names


def batch_stats(results: Iterable[dict]) -> dict:
    """Counts of a list of predict_titles results (or the error objects that stand for bad lines): they add
    up across batches (merge_stats), and every figure of the summary follows from them."""
    labels = dict.fromkeys((*TOPICS, OTHER), 0)
    confidences = []
    lines = errors = 0
    for result in results:
        lines += 1
        if result.get("error") is not None or result.get("label") is None:
            errors += 1
            continue
        labels[result["label"]] = labels.get(result["label"], 0) + 1
        confidences.append(result["confidence"])
    conf = np.asarray(confidences, dtype=float)
    return {"lines": lines, "errors": errors, "labels": labels,
            "bins": np.bincount(np.searchsorted(EDGES, conf, side="right"), minlength=len(EDGES) + 1).tolist(),
            "low": int((conf < LOW_CUT).sum()), "confidence_sum": float(conf.sum()),
            "confidence_sq": float((conf**2).sum())}


def empty_stats() -> dict:
    return batch_stats([])


def merge_stats(a: dict, b: dict) -> dict:
    """The counts of two batches together."""
    return {"lines": a["lines"] + b["lines"], "errors": a["errors"] + b["errors"],
            "labels": {k: a["labels"].get(k, 0) + b["labels"].get(k, 0) for k in {*a["labels"], *b["labels"]}},
            "bins": [x + y for x, y in zip(a["bins"], b["bins"], strict=True)], "low": a["low"] + b["low"],
            "confidence_sum": a["confidence_sum"] + b["confidence_sum"],
            "confidence_sq": a["confidence_sq"] + b["confidence_sq"]}


def wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a share k/n: unlike a bootstrap it keeps a width at 0 of n (a gold with no
    low-confidence answer must not make a single one in a batch look like drift)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def share_counts(stats: dict) -> dict[str, int]:
    """Numerator of every share figure; the denominator is the classified lines."""
    counts = {f"topic:{t}": stats["labels"].get(t, 0) for t in TOPICS}
    counts["abstain"] = stats["labels"].get(OTHER, 0)
    counts.update({f"bin:{i}": c for i, c in enumerate(stats["bins"])})
    counts["low"] = stats["low"]
    return counts


FIGURE_KEYS = ("value", "lo", "hi", "test_lo", "test_hi")


def figure(value: float, shown: tuple[float, float], test: tuple[float, float]) -> dict[str, float]:
    return {"value": value, "lo": shown[0], "hi": shown[1], "test_lo": test[0], "test_hi": test[1]}


def clip(lo: float, hi: float) -> tuple[float, float]:
    """A normal interval kept inside [0, 1], where a confidence lives."""
    return max(lo, 0.0), min(hi, 1.0)


def batch_figures(stats: dict) -> dict[str, dict[str, float]]:
    """Every figure of a batch with its 95% (shown) and 99% (tested) interval: Wilson for shares, normal for
    the mean confidence (a mean of values in [0, 1]: the central limit holds from a few dozen lines)."""
    n = stats["lines"] - stats["errors"]
    out = {name: figure(k / n if n else math.nan, wilson(k, n, Z_SHOWN), wilson(k, n, Z_TEST))
           for name, k in share_counts(stats).items()}
    mean = stats["confidence_sum"] / n if n else math.nan
    var = max(stats["confidence_sq"] / n - mean * mean, 0.0) * n / (n - 1) if n > 1 else math.nan
    se = math.sqrt(var / n) if n > 1 else math.nan
    out["mean_confidence"] = figure(mean, clip(mean - Z_SHOWN * se, mean + Z_SHOWN * se),
                                    clip(mean - Z_TEST * se, mean + Z_TEST * se))
    return out


def reference(results: list[dict], seed: int = BOOTSTRAP_SEED) -> dict[str, Any]:
    """The figures of the gold answers (results of predict_titles on the gold titles), JSON-serialisable for
    model.json. Shares take Wilson intervals (as the batch's, from the same counts); the mean confidence a
    percentile bootstrap over items (seeded, so a model's reference is repeatable)."""
    stats = batch_stats(results)
    figures = batch_figures(stats)
    conf = np.array([r["confidence"] for r in results if r.get("error") is None and r.get("label") is not None],
                    dtype=float)
    if len(conf):
        weights = np.random.default_rng(seed).multinomial(len(conf), np.full(len(conf), 1 / len(conf)),
                                                          size=BOOTSTRAP_SAMPLES)
        means = weights @ conf / len(conf)  # one resampled mean per row, without materialising the resamples
        lo95, hi95, lo99, hi99 = np.percentile(means, [2.5, 97.5, 0.5, 99.5]).tolist()
        figures["mean_confidence"] = figure(float(conf.mean()), (lo95, hi95), (lo99, hi99))
    return {"items": stats["lines"] - stats["errors"], "edges": list(EDGES), "low_cut": LOW_CUT,
            "figures": {name: {k: round(v, 6) for k, v in f.items()} for name, f in figures.items()},
            "stats": stats}


def pick_reference(info: dict, abstain: bool) -> tuple[dict | None, str]:
    """The reference a saved model carries for this answer mode, or None and why there is none."""
    saved = info.get("batch_reference")
    if not saved:
        return None, "this model carries no gold reference (trained before batch summaries): nothing to compare with"
    ref = saved.get("abstain" if abstain else "no_abstain") if isinstance(saved, dict) else None
    try:
        if list(ref["edges"]) != list(EDGES) or ref["low_cut"] != LOW_CUT:
            return None, "the model's gold reference uses other confidence bins: retrain it to compare"
        names = {*share_counts(empty_stats()), "mean_confidence"}
        ok = all(isinstance(ref["figures"][name][k], int | float) for name in names for k in FIGURE_KEYS)
        ok = ok and isinstance(ref["items"], int)
    except (KeyError, TypeError):
        ok = False
    if not ok:  # hand-edited or from another version: say so rather than crash after a long run
        return None, "the model's gold reference in model.json is unreadable: nothing to compare with"
    return ref, ""


def difference(batch: dict[str, float], gold: dict[str, float]) -> tuple[float, float, float]:
    """Batch minus gold and its 99% interval (MOVER): each side's distance to its own bound adds in
    quadrature, so neither sample's noise is ignored."""
    d = batch["value"] - gold["value"]
    lo = d - math.hypot(batch["value"] - batch["test_lo"], gold["test_hi"] - gold["value"])
    hi = d + math.hypot(batch["test_hi"] - batch["value"], gold["value"] - gold["test_lo"])
    return d, lo, hi


def differs(batch: dict[str, float], gold: dict[str, float]) -> int:
    """+1 when the batch is higher than gold beyond both samples' noise, -1 lower, 0 within it."""
    if any(math.isnan(x) for x in (*batch.values(), *gold.values())):
        return 0
    _, lo, hi = difference(batch, gold)
    return 1 if lo > 0 else -1 if hi < 0 else 0


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def with_interval(f: dict[str, float], share: bool = True) -> str:
    if math.isnan(f["value"]):
        return "–"
    if share:
        return f"{pct(f['value'])} [{100 * f['lo']:.1f}–{100 * f['hi']:.1f}%]"
    return f"{f['value']:.3f} [{f['lo']:.3f}–{f['hi']:.3f}]"


WHAT = {"low": f"low-confidence share (confidence < {LOW_CUT})", "abstain": f"abstain share (`{OTHER}`)",
        "mean_confidence": "mean confidence"}
WHY = {"low": "the model is unsure of more of this batch than of the gold",
       "abstain": f"more of it is answered `{OTHER}` than on the gold (a feed beyond the four topics, or headlines "
                  "the model no longer recognises)",
       "mean_confidence": "the model is less sure of this batch than of the gold"}
WHICH = {"low": f"its lines with confidence < {LOW_CUT}", "abstain": f"its `{OTHER}` lines",
         "mean_confidence": "its least confident lines"}


def drift_warnings(batch: dict, ref: dict | None) -> list[str]:
    """One line per confidence signal beyond the gold's on its worrying side (module doc: the test), saying
    what is off and what to do. Batch = batch_stats counts; ref = reference() or None (no warnings)."""
    if ref is None:
        return []
    figures = batch_figures(batch)
    out = []
    for name, side in WARN_SIDE.items():
        b, g = figures[name], ref["figures"][name]
        if differs(b, g) != side:
            continue
        share = name != "mean_confidence"
        d, lo, hi = difference(b, g)
        gap = (f"{100 * d:+.1f} points, 99% interval {100 * lo:+.1f} to {100 * hi:+.1f}" if share
               else f"{d:+.3f}, 99% interval {lo:+.3f} to {hi:+.3f}")
        out.append(f"warning: {WHAT[name]} {with_interval(b, share)} in this batch vs {with_interval(g, share)} on "
                   f"gold ({gap}): {WHY[name]}. This batch may come from an outlet, section or period the model was "
                   f"not measured on, where the gold's accuracy need not hold: check a sample of {WHICH[name]} by "
                   "hand before relying on its topic shares.")
    return out


def format_summary(batch: dict, ref: dict | None, why_none: str = "") -> str:
    """The summary as text: counts, then each figure beside the gold's (95% intervals), marked ↑/↓ where it
    differs beyond both samples' noise, then the warnings (or that there are none)."""
    n = batch["lines"] - batch["errors"]
    lines = [f"batch summary: {batch['lines']:,} lines, {batch['errors']:,} errors, {n:,} classified"
             + (f"; gold reference: {ref['items']:,} headlines" if ref else "")]
    if ref is None:
        lines.append(f"  {why_none or 'no gold reference: nothing to compare with'}")
    figures = batch_figures(batch)
    rows = [(f"topic:{t}", t) for t in TOPICS] + [("abstain", f"{OTHER} (abstain)")]
    rows += [(f"bin:{i}", name) for i, name in enumerate(bin_names())]  # bin 0 is the low share
    rows += [("mean_confidence", "mean confidence")]
    lines.append(f"  {'':<25}{'batch':<26}{'gold' if ref else ''}".rstrip())
    marked = False
    for name, label in rows:
        share = name != "mean_confidence"
        cells = f"  {label:<25}{with_interval(figures[name], share):<26}"
        if ref is not None:
            g = ref["figures"][name]
            mark = {1: " ↑", -1: " ↓", 0: ""}[differs(figures[name], g)]
            marked |= bool(mark)
            cells += with_interval(g, share) + mark
        lines.append(cells.rstrip())
    if marked:
        lines.append("  ↑/↓: differs from gold beyond both samples' noise (99%); a topic mix may (a feed of one "
                     "section): only the confidence figures warn")
    if ref is not None and n == 0:
        lines.append("  no line was classified: nothing to compare with the gold")
    elif ref is not None:
        warnings = drift_warnings(batch, ref)
        lines += warnings or ["  no drift warning: the confidence figures are within the gold's, noise allowed for"]
    return "\n".join(lines) + "\n"
