"""The evaluation protocol: a stable tune/fit split of the annotations, gold only reported (per file and
source), bootstrap intervals, and promote's paired rules (on all gold, and per gold source)."""

import random

import numpy as np
import pytest

from pipeline import TOPICS
from pipeline.cli import UserError
from pipeline.config import DataConfig, load_config
from pipeline.gold import (
    FIT,
    REPORT,
    TUNE,
    annotation_rows,
    coverage_interval,
    encode,
    encode_sources,
    held_out_keys,
    items_digest,
    macro_f1_interval,
    macro_f1_rows,
    paired_difference,
    read_gold,
    scored_topics,
    slices,
)
from pipeline.promote import comparison_table, paired, pick_candidate, should_replace, worse_sources
from pipeline.text import normalize_title


def titles(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(['경찰', '국회', '코스피', '프로야구'])} 제목 {i} {rng.randint(0, 10**6)}" for i in range(n)]


def parts(rows: list[dict], share: float, gold: list[dict] = ()) -> dict[str, set[str]]:
    out = {TUNE: set(), FIT: set()}
    for row in annotation_rows(rows, gold, share):
        out[row["part"]].add(row["title"])
    return out


def test_annotation_split_is_stable_disjoint_and_near_the_share():
    rows = [{"title": t, "label": "crime", "source": "s"} for t in titles(2000)]
    first, again = parts(rows, 0.5), parts(list(reversed(rows)), 0.5)
    assert first == again  # order does not matter
    assert not first[TUNE] & first[FIT] and len(first[TUNE]) + len(first[FIT]) == 2000
    assert 0.45 < len(first[TUNE]) / 2000 < 0.55
    assert 0.25 < len(parts(rows, 0.3)[TUNE]) / 2000 < 0.35


def test_tagged_and_plain_copies_of_a_headline_land_in_the_same_part():
    for t in titles(200):
        rows = [{"title": v, "label": "crime", "source": "s"} for v in (f"[속보] {t}", t, f"{t} (종합)")]
        assert len({r["part"] for r in (annotation_rows([row], [], 0.5)[0] for row in rows)}) == 1


def test_held_out_keys_are_gold_and_the_tune_part_only():
    gold = [{"title": "[속보] 경찰, 강도 피의자 체포", "label": "crime"}]
    annotations = [{"title": "코스피 2800선 회복", "label": "business", "part": TUNE},
                   {"title": "프로야구 LG 역전승", "label": "sports", "part": FIT},
                   {"title": "여야, 예산안 합의", "label": "politics"}]  # no part: a tune row
    keys = held_out_keys(gold, annotations)
    assert keys == {normalize_title(t).key for t in ("경찰, 강도 피의자 체포", "코스피 2800선 회복", "여야, 예산안 합의")}
    assert held_out_keys(gold) == {normalize_title("경찰, 강도 피의자 체포").key}


def test_a_gold_title_is_never_an_annotation():
    gold = [{"title": "경찰, 강도 피의자 체포", "label": "crime", "source": "g"}]
    rows = [{"title": "[단독] 경찰, 강도 피의자 체포", "label": "crime", "source": "s"},
            {"title": "국회 본회의 통과", "label": "politics", "source": "s"}]
    assert [r["title"] for r in annotation_rows(rows, gold, 0.5)] == ["국회 본회의 통과"]


def test_gold_is_sliced_per_file_and_source_with_enough_items_per_topic():
    gold = [{"title": f"t{i}", "label": label, "source": source, "file": file}
            for i, (label, source, file) in enumerate([("crime", "a", "dev")] * 25 + [("sports", "b", "dev")] * 3
                                                      + [("business", "매경", "outlets")] * 21)]
    got = slices(gold)
    assert list(got) == [REPORT, "gold_file/dev", "gold_file/outlets", "gold_source/a", "gold_source/b",
                         "gold_source/매경"]
    assert len(got[REPORT]) == 49 and len(got["gold_file/dev"]) == 28 and len(got["gold_source/b"]) == 3
    assert scored_topics([g["label"] for g in got[REPORT]]) == ("crime", "business")  # sports has 3 items
    assert scored_topics(["sports"] * 3) == ("politics", "crime", "sports", "business")  # none has 20: all


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
            items: str | None = None, sources: list[str] | None = None) -> dict:
    from pipeline.gold import macro_f1_interval

    return {"name": "headline-topic", "version": "1", "run_id": name, "champion": champion,
            "tags": {"model_kind": name, "report/macro_f1": str(macro_f1_interval(truth, pred).value),
                     "report/items": items or items_digest(titles(len(truth))),
                     "report/truth": encode(truth), "report/answers": encode(pred),
                     "headlines_per_second": str(per_second), "model_bytes": "1000",
                     **encode_sources(sources or ["one"] * len(truth))}}


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
    assert pick_candidate([fast, slow_tied])[0] is fast
    assert pick_candidate([fast, slow_better])[0] is slow_better


def test_versions_scored_on_other_items_are_not_paired():
    truth, base = answers(200, 30)
    legacy = {"name": "headline-topic", "version": "1", "run_id": "old", "champion": True,
              "tags": {"model_kind": "tfidf", "gold_macro_f1": "0.99"}}
    fresh = version("kobert", truth, base, per_second=600)
    assert pick_candidate([legacy, fresh]) == (fresh, legacy)  # the legacy version is never the candidate
    assert should_replace(fresh, legacy)[0]
    other_items = version("tfidf", truth, truth, per_second=5000, items="0" * 16)
    assert pick_candidate([other_items, fresh])[0] is other_items  # best; the other is not paired, so not tied
    ok, why = should_replace(fresh, {**other_items, "champion": True})
    assert ok and "pair" in why
    relabeled = version("tfidf", [TOPICS[(TOPICS.index(t) + 1) % 4] for t in truth], base, per_second=5000)
    assert paired(fresh, relabeled) is None  # same titles, other gold labels: not paired either
    assert paired(fresh, version("tfidf", truth, truth, per_second=5000)) is not None


def test_a_version_tagged_before_metric_sections_is_not_comparable():
    """A store's older versions carry gold_report_* tags: never the candidate, replaced as champion, and the
    comparison table shows it without a figure rather than failing."""
    truth, base = answers(200, 30)
    fresh = version("kobert", truth, base, per_second=600)
    old_tags = {k.replace("report/", "gold_report_"): v for k, v in version("tfidf", truth, truth, 9000)["tags"].items()}
    old = {**fresh, "version": "2", "champion": True, "tags": old_tags}
    assert pick_candidate([old, fresh]) == (fresh, old)
    ok, why = should_replace(fresh, old)
    assert ok and "pair" in why
    assert worse_sources(old, fresh) == []
    assert "nan" in comparison_table(fresh, old)


def test_a_gain_on_all_gold_does_not_crown_a_model_worse_on_one_source():
    # 400 items: 300 of outlet A, 100 of outlet B. The candidate fixes 60 errors on A and makes 30 new ones on B.
    truth = [TOPICS[i % 4] for i in range(400)]
    sources = ["A"] * 300 + ["B"] * 100
    champion_answers = list(truth)
    for i in range(0, 120, 2):  # 60 errors on A
        champion_answers[i] = TOPICS[(TOPICS.index(truth[i]) + 1) % 4]
    candidate_answers = list(truth)
    for i in range(300, 330):  # 30 errors on B
        candidate_answers[i] = TOPICS[(TOPICS.index(truth[i]) + 1) % 4]
    champion = version("tfidf", truth, champion_answers, per_second=5000, champion=True, sources=sources)
    candidate = version("kobert", truth, candidate_answers, per_second=600, sources=sources)
    assert paired(champion, candidate).lo > 0  # better beyond noise on all gold ...
    worse = worse_sources(champion, candidate)
    assert len(worse) == 1 and worse[0].startswith("B ")  # ... but worse beyond noise on outlet B
    ok, why = should_replace(candidate, champion)
    assert not ok and "worse beyond noise on B" in why
    # without the loss on B it is crowned
    fixed = version("kobert", truth, truth, per_second=600, sources=sources)
    assert worse_sources(champion, fixed) == [] and should_replace(fixed, champion)[0]
