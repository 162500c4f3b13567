"""`predict --input ... --summary`: the batch figures, the gold reference a model carries, the drift warning."""

import io
import json
import math
import random
import subprocess
import sys

import numpy as np
import pytest

from pipeline import OTHER, REPO_ROOT, TOPICS, summary
from pipeline.calibration import choose_thresholds
from pipeline.config import TfidfConfig
from pipeline.models import load_model
from pipeline.models.tfidf import TfidfModel
from pipeline.predict import predict_stream, predict_titles, reference_for
from tests.conftest import make_ynat_rows

SECTIONS = {"정치": "politics", "경제": "business", "스포츠": "sports"}
CRIME_WORDS = ("구속", "검거", "입건", "체포", "선고", "기소")
# Korean, but no news: diary lines and small talk, a kind of text the fixture model never saw
NOT_NEWS = ["오늘 저녁 메뉴는 김치찌개로 정했어요", "주말에 친구랑 한강에서 자전거 탔다", "고양이가 창밖을 바라보며 하품을 한다",
            "이 책은 정말 감동적이었다", "엄마가 끓여준 미역국이 그립다", "비 오는 날에는 파전에 막걸리", "새로 산 운동화가 편하다",
            "봄이 오면 꽃구경 가자", "어제 본 영화 결말이 충격적", "커피 한 잔의 여유", "퇴근길 지하철에서 졸다가 내릴 역을 지나쳤다",
            "동생 생일 선물로 뭘 사야 할지 모르겠다", "아침마다 스트레칭을 십 분씩 한다", "할머니 댁 마당에 감이 주렁주렁"]


def topic_of(row: dict) -> str:
    """The fixture's sections as topics: 사회 templates are crime only when they say so (weather is not)."""
    if row["label"] == "사회":
        return "crime" if any(w in row["title"] for w in CRIME_WORDS) else OTHER
    return SECTIONS.get(row["label"], OTHER)


def titles(seed: int, per_template: int = 6) -> list[str]:
    """A fresh sample of the fixture generator: the same kind of headlines as the model's gold, other fills."""
    return [r["title"] for r in make_ynat_rows(per_template=per_template, seed=seed)]


@pytest.fixture(scope="module")
def fitted():
    """A TF-IDF model on the fixture's templates with an abstain threshold set on held-out rows (as training
    does), and its reference built on a gold-like sample (what pipeline.train stores in model.json)."""
    rows = make_ynat_rows()
    random.Random(0).shuffle(rows)
    fit_rows, val_rows = rows[: len(rows) * 3 // 4], rows[len(rows) * 3 // 4:]
    model = TfidfModel(TfidfConfig(words="off", min_df=1)).fit([r["title"] for r in fit_rows],
                                                               [topic_of(r) for r in fit_rows], seed=3)
    proba = model.predict_proba([r["title"] for r in val_rows])
    model.threshold, model.other_threshold = choose_thresholds(proba, model.labels, [topic_of(r) for r in val_rows],
                                                               0.95)
    model.info["batch_reference"] = reference_for(model, titles(seed=11))
    return model


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """The fitted model saved twice: with its reference, and as a model trained before references existed."""
    root = tmp_path_factory.mktemp("summary-models")
    fitted.save(root / "with")
    reference = fitted.info.pop("batch_reference")
    try:
        fitted.save(root / "without")
    finally:
        fitted.info["batch_reference"] = reference
    return root


def ref_of(model, abstain: bool = True) -> dict:
    ref, why = summary.pick_reference(model.info, abstain)
    assert ref is not None, why
    return ref


def result(label, confidence):
    return {"title": "t", "label": label, "confidence": confidence, "scores": {}}


def test_figures_of_a_hand_made_batch():
    results = [result("politics", 0.95), result("politics", 0.8), result("crime", 0.6), result("sports", 0.3),
               result(OTHER, 0.45), result(OTHER, 0.92), result("business", 1.0), result("business", 0.5),
               {"title": "", "label": None, "confidence": None, "scores": None, "error": "empty title"},
               {"title": None, "label": None, "confidence": None, "scores": None, "error": "line 9: not valid UTF-8"}]
    stats = summary.batch_stats(results)
    assert stats["lines"] == 10 and stats["errors"] == 2
    assert stats["labels"] == {"politics": 2, "crime": 1, "sports": 1, "business": 2, OTHER: 2}
    assert stats["bins"] == [2, 2, 1, 3]  # <.5: .3 .45 | .5-.7: .6 .5 (a cut belongs to the bin above) | .8 | .95 .92 1
    assert stats["low"] == 2
    figures = summary.batch_figures(stats)
    assert figures["topic:politics"]["value"] == 0.25 and figures["abstain"]["value"] == 0.25  # of 8 classified
    assert figures["low"]["value"] == figures["bin:0"]["value"] == 0.25
    confs = [0.95, 0.8, 0.6, 0.3, 0.45, 0.92, 1.0, 0.5]
    assert figures["mean_confidence"]["value"] == pytest.approx(np.mean(confs))
    half = summary.Z_SHOWN * np.std(confs, ddof=1) / math.sqrt(8)
    assert figures["mean_confidence"]["hi"] == pytest.approx(np.mean(confs) + half)
    # Wilson 95% of 2 of 8 (textbook value: 0.0715 to 0.5907)
    assert (figures["abstain"]["lo"], figures["abstain"]["hi"]) == pytest.approx((0.0715, 0.5907), abs=1e-4)
    assert figures["abstain"]["test_lo"] < figures["abstain"]["lo"] and figures["abstain"]["test_hi"] > 0.5907
    text = summary.format_summary(stats, None)
    assert "10 lines, 2 errors, 8 classified" in text and "no gold reference" in text
    assert "politics                 25.0% [7.1–59.1%]" in text and "mean confidence          0.690" in text


def test_counts_add_up_batch_by_batch():
    rng = random.Random(1)
    results = [result(rng.choice([*TOPICS, OTHER]), round(rng.random(), 4)) for _ in range(500)]
    whole = summary.batch_stats(results)
    merged = summary.empty_stats()
    for start in range(0, 500, 64):
        merged = summary.merge_stats(merged, summary.batch_stats(results[start:start + 64]))
    assert {k: v for k, v in merged.items() if "confidence" not in k} == \
        {k: v for k, v in whole.items() if "confidence" not in k}
    assert merged["confidence_sum"] == pytest.approx(whole["confidence_sum"])
    assert merged["confidence_sq"] == pytest.approx(whole["confidence_sq"])


def test_reference_is_plain_json_and_repeatable(fitted):
    saved = fitted.info["batch_reference"]
    assert json.loads(json.dumps(saved)) == saved
    assert reference_for(fitted, titles(seed=11)) == saved  # seeded bootstrap: the same model, the same figures
    ref = ref_of(fitted)
    assert ref["items"] == len(titles(seed=11))
    for f in ref["figures"].values():
        assert f["test_lo"] <= f["lo"] <= f["value"] <= f["hi"] <= f["test_hi"]
    # without abstaining nothing is `other`: --no-abstain runs compare with their own figures
    assert ref_of(fitted, abstain=False)["figures"]["abstain"]["value"] == 0
    assert 0 < ref["figures"]["abstain"]["value"] < 0.5


def test_warns_on_a_batch_of_text_the_model_never_saw(fitted):
    batch = summary.batch_stats(predict_titles(fitted, NOT_NEWS * 4))
    warnings = summary.drift_warnings(batch, ref_of(fitted))
    assert any(w.startswith("warning: abstain share") for w in warnings), warnings
    assert all("check a sample" in w and "on gold" in w for w in warnings)
    text = summary.format_summary(batch, ref_of(fitted))
    assert "warning: abstain share (`other`) 100.0%" in text


def test_warns_when_a_new_kind_of_headline_drifts_in(fitted):
    """Headlines of a section the model never saw, mixed in at 40% with ordinary ones."""
    rng = random.Random(5)
    culture = ["{0} 미술관, 봄맞이 특별전 개막", "{0} 국제영화제 상영작 발표", "{0}서 K팝 콘서트…관객 3만명",
               "{0} 뮤지컬 초연 매진 행렬", "{0} 박물관 야간 개장 연장"]
    places = ["서울", "부산", "전주", "강릉", "제주", "여수"]
    odd = [rng.choice(culture).format(rng.choice(places)) for _ in range(120)]
    batch = summary.batch_stats(predict_titles(fitted, titles(seed=13, per_template=4)[:180] + odd))
    assert summary.drift_warnings(batch, ref_of(fitted))


def test_quiet_on_gold_like_batches_large_and_small(fitted):
    ref = ref_of(fitted)
    fresh = titles(seed=12)
    assert summary.drift_warnings(summary.batch_stats(predict_titles(fitted, fresh)), ref) == []
    assert "no drift warning" in summary.format_summary(summary.batch_stats(predict_titles(fitted, fresh)), ref)
    rng = random.Random(3)
    pool = titles(seed=14, per_template=10)
    for _ in range(20):  # 50-line batches: their own noise is wide, and allowed for
        batch = summary.batch_stats(predict_titles(fitted, rng.sample(pool, 50)))
        assert summary.drift_warnings(batch, ref) == []


def synthetic(rng: np.random.Generator, n: int, p_low: float, p_other: float) -> list[dict]:
    """Results whose answers are drawn from a fixed distribution: low-confidence and abstain rates as given."""
    low = rng.random(n) < p_low
    conf = np.where(low, rng.uniform(0.25, 0.5, n), rng.beta(8, 1.5, n) * 0.5 + 0.5)
    labels = np.where(rng.random(n) < p_other, OTHER, rng.choice(TOPICS, n))
    return [result(str(label), float(c)) for label, c in zip(labels, conf, strict=True)]


def test_false_alarms_are_rare_and_real_shifts_are_caught():
    """The test's two promises, on answers drawn from known distributions: a batch drawn like the gold
    (any size) warns rarely; a batch with twice the low-confidence share warns once it is big enough."""
    rng = np.random.default_rng(0)
    ref = summary.reference(synthetic(rng, 400, 0.12, 0.3))
    alarms = sum(bool(summary.drift_warnings(summary.batch_stats(synthetic(rng, int(n), 0.12, 0.3)), ref))
                 for n in rng.choice([50, 200, 1000, 20000], 400))
    assert alarms <= 400 * 0.04  # ≤ 1.5% by construction (3 one-sided 0.5% tests), slack for a bootstrap
    caught = sum(any(w.startswith("warning: low-confidence") for w in
                     summary.drift_warnings(summary.batch_stats(synthetic(rng, 2000, 0.24, 0.3)), ref))
                 for _ in range(50))
    assert caught >= 45


def test_a_reference_with_no_low_answer_does_not_alarm_on_one():
    """A gold whose answers are all confident: a bootstrap would give its low share a zero-width interval;
    the Wilson interval keeps room, so one unsure line in 50 is noise."""
    ref = summary.reference([result("politics", 0.95)] * 200)
    batch = summary.batch_stats([result("politics", 0.95)] * 49 + [result("politics", 0.4)])
    assert summary.drift_warnings(batch, ref) == []


@pytest.mark.parametrize("info, why", [
    ({}, "no gold reference"),
    ({"batch_reference": {"abstain": {"edges": [0.1], "low_cut": 0.5}}}, "other confidence bins"),
    ({"batch_reference": {"abstain": {"edges": list(summary.EDGES), "low_cut": 0.5, "figures": {}}}}, "unreadable"),
    ({"batch_reference": "garbage"}, "unreadable"),
])
def test_models_without_a_usable_reference_still_summarise(info, why):
    ref, message = summary.pick_reference(info, True)
    assert ref is None and why in message
    text = summary.format_summary(summary.batch_stats([result("crime", 0.9)]), ref, message)
    assert why in text and "crime" in text and "warning" not in text


def test_no_gold_gives_no_reference(fitted):
    assert reference_for(fitted, []) == {}
    assert "no gold reference" in summary.pick_reference({"batch_reference": {}}, True)[1]


def test_empty_batch_summarises_without_figures(fitted):
    text = summary.format_summary(summary.empty_stats(), ref_of(fitted))
    assert "0 lines, 0 errors, 0 classified" in text and "nothing to compare" in text and "warning" not in text


def test_stream_counts_are_the_same_in_forked_workers(fitted, monkeypatch):
    from pipeline import predict

    monkeypatch.setattr(predict, "BATCH", 50)  # many batches, answered by two workers out of order of finishing
    data = "\n".join([*titles(seed=15)[:300], "", "just english", *NOT_NEWS]).encode() + b"\n\xff\xfe\n"
    outputs, totals = [], []
    for workers in (1, 2):
        out, total = io.StringIO(), [summary.empty_stats()]
        predict_stream(fitted, io.BytesIO(data), out, workers=workers,
                       on_stats=lambda s, t=total: t.__setitem__(0, summary.merge_stats(t[0], s)))
        outputs.append(out.getvalue())
        totals.append(total[0])
    plain = io.StringIO()
    predict_stream(fitted, io.BytesIO(data), plain)
    assert outputs[0] == outputs[1] == plain.getvalue()
    whole = summary.batch_stats([json.loads(line) for line in plain.getvalue().splitlines()])
    for total in totals:  # counts exactly; float sums up to the order they were added in
        assert {k: v for k, v in total.items() if "confidence" not in k} == \
            {k: v for k, v in whole.items() if "confidence" not in k}
        assert (total["confidence_sum"], total["confidence_sq"]) == \
            pytest.approx((whole["confidence_sum"], whole["confidence_sq"]))
    assert whole["errors"] == 3


def predict_cli(*args, stdin: bytes):
    return subprocess.run([sys.executable, "-m", "pipeline.predict", *args], cwd=REPO_ROOT, input=stdin,
                          capture_output=True, timeout=120)


def test_cli_summary_leaves_stdout_byte_identical_and_warns_on_drift(saved, tmp_path):
    data = "\n".join([*titles(seed=16)[:60], *NOT_NEWS * 3]).encode() + b"\n"
    model = ["--model", str(saved / "with"), "--input", "-", "--workers", "1"]
    plain = predict_cli(*model, stdin=data)
    to_stderr = predict_cli(*model, "--summary", stdin=data)
    to_file = predict_cli(*model, "--summary", str(tmp_path / "summary.txt"), stdin=data)
    assert plain.returncode == to_stderr.returncode == to_file.returncode == 0, to_stderr.stderr.decode()
    assert plain.stdout == to_stderr.stdout == to_file.stdout and plain.stderr == b""
    shown = to_stderr.stderr.decode()
    assert shown.startswith(f"batch summary: {60 + 3 * len(NOT_NEWS)} lines, 0 errors")
    assert "warning: abstain share" in shown and "check a sample" in shown
    assert (tmp_path / "summary.txt").read_text(encoding="utf-8") == shown and to_file.stderr == b""


def test_cli_summary_of_a_model_without_reference(saved):
    proc = predict_cli("--model", str(saved / "without"), "--input", "-", "--summary",
                       stdin="\n".join(titles(seed=17)[:20]).encode())
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(proc.stdout.splitlines()) == 20
    text = proc.stderr.decode()
    assert "carries no gold reference" in text and "politics" in text and "warning" not in text
    assert load_model(saved / "without").info.get("batch_reference") is None


@pytest.mark.parametrize("args, message", [
    (["--summary", "/no/such/dir/summary.txt"], "error: --summary /no/such/dir/summary.txt: directory /no/such/dir"),
    (["--summary", "/tmp"], "error: --summary /tmp: is a directory"),
])
def test_cli_unwritable_summary_path_is_one_line(saved, args, message):
    proc = predict_cli("--model", str(saved / "with"), "--input", "-", *args, stdin=b"")
    text = proc.stderr.decode()
    assert proc.returncode == 2 and text.startswith(message) and text.count("\n") == 1 and proc.stdout == b""


def test_summary_needs_a_batch():
    from pipeline.cli import UserError
    from pipeline.predict import summary_target

    assert summary_target(True) is None and summary_target(None) is None
    proc = subprocess.run([sys.executable, "-m", "pipeline.predict", "--summary", "--", "경찰 체포"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --summary summarises a batch")
    with pytest.raises(UserError, match="is a directory"):
        summary_target(str(REPO_ROOT))
