"""The gold protocol: a stable tune/report split, bootstrap intervals, and promote's paired rule."""

import random

import numpy as np
import pytest

from pipeline import TOPICS
from pipeline.cli import UserError
from pipeline.config import DataConfig, load_config
from pipeline.gold import (
    REPORT,
    TUNE,
    coverage_interval,
    encode,
    gold_part,
    items_digest,
    macro_f1_interval,
    macro_f1_rows,
    paired_difference,
    read_gold,
    split_gold,
)
from pipeline.promote import paired, propose, should_replace


def titles(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(['경찰', '국회', '코스피', '프로야구'])} 제목 {i} {rng.randint(0, 10**6)}" for i in range(n)]


def test_split_is_stable_disjoint_and_near_the_share():
    rows = [{"title": t, "label": "crime"} for t in titles(2000)]
    first, again = split_gold(rows, 0.5), split_gold(list(reversed(rows)), 0.5)
    assert {g["title"] for g in first[TUNE]} == {g["title"] for g in again[TUNE]}  # order does not matter
    assert not {g["title"] for g in first[TUNE]} & {g["title"] for g in first[REPORT]}
    assert len(first[TUNE]) + len(first[REPORT]) == 2000
    assert 0.45 < len(first[REPORT]) / 2000 < 0.55
    assert 0.25 < len(split_gold(rows, 0.3)[REPORT]) / 2000 < 0.35


def test_tagged_and_plain_copies_of_a_headline_land_in_the_same_part():
    for t in titles(200):
        assert gold_part(f"[속보] {t}", 0.5) == gold_part(t, 0.5) == gold_part(f"{t} (종합)", 0.5)


def test_unknown_gold_label_names_the_line(tmp_path, monkeypatch):
    (tmp_path / "gold").mkdir()
    (tmp_path / "gold" / "dev.tsv").write_text("title\tlabel\n국회 통과\tpolitics\n경찰 체포\tcrimes\n", encoding="utf-8")
    monkeypatch.setenv("HEADLINE_DATA_DIR", str(tmp_path))
    with pytest.raises(UserError, match=r"dev.tsv:3: unknown label 'crimes'"):
        read_gold(load_config(DataConfig))


def test_vectorised_macro_f1_matches_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        t, p = rng.integers(0, 4, 60), rng.integers(0, 4, 60)
        p[:30] = t[:30]
        expected = f1_score(t, p, labels=range(4), average="macro", zero_division=0)
        assert macro_f1_rows(t[None, :], p[None, :])[0] == pytest.approx(expected)


def answers(n: int, wrong: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    truth = [TOPICS[i % 4] for i in range(n)]
    pred = list(truth)
    for i in rng.sample(range(n), wrong):
        pred[i] = TOPICS[(TOPICS.index(truth[i]) + 1) % 4]
    return truth, pred


def test_interval_holds_the_estimate_and_narrows_with_more_items():
    small, large = macro_f1_interval(*answers(40, 4)), macro_f1_interval(*answers(400, 40))
    for interval in (small, large):
        assert interval.lo <= interval.value <= interval.hi
    assert large.hi - large.lo < small.hi - small.lo
    cover = coverage_interval([True] * 95 + [False] * 5)
    assert cover.value == pytest.approx(0.95) and cover.lo < 0.95 < cover.hi


def test_paired_difference_separates_noise_from_a_real_gain():
    truth, worse = answers(200, 30)
    assert (d := paired_difference(truth, worse, worse)).value == 0 and d.lo == d.hi == 0
    one_more = list(worse)
    first_wrong = next(i for i, (t, p) in enumerate(zip(truth, worse, strict=True)) if t != p)
    one_more[first_wrong] = truth[first_wrong]
    tiny = paired_difference(truth, worse, one_more)
    assert tiny.value > 0 and tiny.lo <= 0  # one item fixed: inside the noise
    assert paired_difference(truth, worse, truth).lo > 0  # 30 items fixed: beyond it
    assert paired_difference(truth, truth, worse).hi < 0


def version(name: str, truth: list[str], pred: list[str], per_second: float, champion: bool = False,
            items: str | None = None) -> dict:
    from pipeline.gold import macro_f1_interval

    return {"name": "headline-topic", "version": "1", "run_id": name, "champion": champion,
            "tags": {"model_kind": name, "gold_report_macro_f1": str(macro_f1_interval(truth, pred).value),
                     "gold_report_items": items or items_digest(titles(len(truth))),
                     "gold_report_truth": encode(truth), "gold_report_answers": encode(pred),
                     "headlines_per_second": str(per_second), "model_bytes": "1000"}}


def test_promote_needs_a_gain_beyond_noise_and_ties_go_to_the_faster_model():
    truth, base = answers(200, 30)
    _, slightly = answers(200, 28)
    fast = version("tfidf", truth, base, per_second=5000, champion=True)
    slow_tied = version("kobert", truth, slightly, per_second=600)
    slow_better = version("kobert", truth, truth, per_second=600)
    ok, why = should_replace(slow_tied, fast)
    assert not ok and "tied" in why
    assert should_replace(slow_better, fast)[0]
    assert should_replace(fast, {**slow_tied, "champion": True})[0]  # a tie: the faster one takes it
    assert not should_replace(version("x", truth, base, per_second=9000), {**slow_better, "champion": True})[0]
    # candidate: the best, or the fastest version tied with it
    assert propose([fast, slow_tied])[0] is fast
    assert propose([fast, slow_better])[0] is slow_better


def test_versions_scored_on_other_items_are_not_paired():
    truth, base = answers(200, 30)
    legacy = {"name": "headline-topic", "version": "1", "run_id": "old", "champion": True,
              "tags": {"model_kind": "tfidf", "gold_macro_f1": "0.99"}}
    fresh = version("kobert", truth, base, per_second=600)
    assert propose([legacy, fresh]) == (fresh, legacy)  # the legacy version is never the candidate
    assert should_replace(fresh, legacy)[0]
    other_items = version("tfidf", truth, truth, per_second=5000, items="0" * 16)
    assert propose([other_items, fresh])[0] is other_items  # best; the other is not paired, so not tied
    ok, why = should_replace(fresh, {**other_items, "champion": True})
    assert ok and "pair" in why
    relabeled = version("tfidf", [TOPICS[(TOPICS.index(t) + 1) % 4] for t in truth], base, per_second=5000)
    assert paired(fresh, relabeled) is None  # same titles, other gold labels: not paired either
    assert paired(fresh, version("tfidf", truth, truth, per_second=5000)) is not None
