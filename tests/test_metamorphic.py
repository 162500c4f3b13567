"""Metamorphic tests: edits that carry no topic change neither the model's text nor a model's answer.

The edits are the style differences between our sources (issue #19): YNAT, the only sports source, was stripped
of quotes, brackets and tags by KLUE, while listings and RSS feeds keep ‘’ “” … [속보], hanja abbreviations and
their own spacing. A model that answers differently for `‘이재성 65분 활약’ 마인츠` and `이재성 65분 활약 마인츠`
has learned the source, not the topic. Each edit is checked on synthetic headlines (a fresh clone runs them),
on a few hundred real headlines of every source (marked `shared_data`), and for generated text (hypothesis).
"""

from __future__ import annotations

import csv
import random
import re
import unicodedata
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import TfidfConfig
from pipeline.models.tfidf import TfidfModel
from pipeline.predict import predict_titles
from pipeline.text import _HAN, HANJA_PAIRS, HANJA_SINGLE, MODEL_HANJA_PAIRS, MODEL_HANJA_SINGLE, model_text
from tests.conftest import GOLD, SHARED_DATA, make_ynat_rows

SOURCES = {
    "ynat": "ynat/ynat_train.csv",
    "naver_2026": "listings/naver_sections_2026-06-05.csv",
    "chosun": "sources/chosun_society_2024-05_2026-06.csv",
    "dailies": "sources/economic_dailies_2026-02.csv",
    "naver_2025": "sources/naver_sections_2025-04-16.csv",
}
PER_SOURCE = 300

QUOTE_MARKS = "‘’“”'\"„‟‚‛«»「」『』′″`"
# A word may be quoted when it is not part of a tag: quoting "[속보]" or "(종합)" would make it a word.
BRACKETS = set("[](){}<>【】〔〕［］〈〉《》")
HANGUL_FOR = {**HANJA_PAIRS, **MODEL_HANJA_PAIRS, **HANJA_SINGLE, **MODEL_HANJA_SINGLE}
HANJA_FOR = {hangul: hanja for hanja, hangul in reversed(HANGUL_FOR.items())}  # first hanja wins (前 for 전)
# Neighbours that leave a hanja abbreviation standing alone and readable (not another hanja, not a mark that
# model_text deletes, which would make two hanja neighbours: "與‘野’" is 여야, "與 野" 여당 야당).
_PLAIN = re.compile(r"[\s가-힣A-Za-z0-9]")

Edit = Callable[[str, random.Random], str]


def _quotable(words: list[str]) -> list[int]:
    return [i for i, w in enumerate(words) if not BRACKETS & set(w)]


def quote_word(left: str, right: str, length: int = 1) -> Edit:
    """Put `left`/`right` around `length` words of the headline (one that is not part of a tag)."""

    def edit(title: str, rng: random.Random) -> str:
        words = title.split(" ")
        spots = [i for i in _quotable(words) if all(j in _quotable(words) for j in range(i, i + length))]
        spots = [i for i in spots if i + length <= len(words) and words[i]]
        if not spots:
            return title
        i = rng.choice(spots)
        words[i], words[i + length - 1] = left + words[i], words[i + length - 1] + right
        return " ".join(words)

    return edit


def _standalone(text: str, start: int, end: int) -> bool:
    return all(k < 0 or k >= len(text) or _PLAIN.match(text[k]) for k in (start - 1, end))


def hanja_to_hangul(title: str, rng: random.Random) -> str:
    """One hanja abbreviation (尹, 野, 與野, ...) written as its Hangul word."""
    text = unicodedata.normalize("NFKC", title)  # compatibility ideographs (李 U+F9E1) are the same hanja
    spots = [(m.start(), m.end()) for m in re.finditer("|".join(map(re.escape, HANGUL_FOR)), text)
             if _standalone(text, m.start(), m.end()) and not re.match(f"[{_HAN}]", text[m.end():m.end() + 1])]
    if not spots:
        return title
    start, end = rng.choice(spots)
    return text[:start] + HANGUL_FOR[text[start:end]] + text[end:]


def hangul_to_hanja(title: str, rng: random.Random) -> str:
    """One Hangul word that has a headline hanja (윤, 야당, 여야, 북한, ...) written as that hanja."""
    spots = [(m.start(), m.end()) for m in re.finditer("|".join(map(re.escape, HANJA_FOR)), title)
             if _standalone(title, m.start(), m.end())]
    if not spots:
        return title
    start, end = rng.choice(spots)
    return title[:start] + HANJA_FOR[title[start:end]] + title[end:]


EDITS: dict[str, Edit] = {
    "quotes removed": lambda t, rng: t.translate(dict.fromkeys(map(ord, QUOTE_MARKS))),
    "‘word’": quote_word("‘", "’"),
    "“word”": quote_word("“", "”"),
    "'word'": quote_word("'", "'"),
    '"word"': quote_word('"', '"'),
    "“two words”": quote_word("“", "”", length=2),
    "『word』": quote_word("『", "』"),
    "… to ...": lambda t, rng: t.replace("…", "..."),
    "... to …": lambda t, rng: re.sub(r"\.{3}", "…", t),
    "spaced …": lambda t, rng: re.sub(r"\s*(…|\.{3})\s*", r" \1 ", t),  # "낭보…불황" (YNAT) as "결제... 누리꾼" (dailies)
    "· as ㆍ": lambda t, rng: t.replace("·", "ㆍ"),
    "[속보] first": lambda t, rng: "[속보] " + t,
    "[단독] first": lambda t, rng: "[단독] " + t,
    "[단독]first": lambda t, rng: "[단독]" + t,
    "(종합) last": lambda t, rng: t + "(종합2보)",
    "hanja for Hangul": hanja_to_hangul,
    "Hangul for hanja": hangul_to_hanja,
    "spaces doubled": lambda t, rng: t.replace(" ", "  "),
}

# Synthetic headlines in every style (a fresh clone has no shared data): the fixture's YNAT-like templates,
# its gold rows, and listing-like headlines with quotes, tags, ellipses, middle dots and hanja.
STYLED = [
    "‘이재성 65분 활약’ 마인츠, 아우에 3-0 격파",
    "[속보] 尹, 野 대표와 회동…“민생 협치”",
    "“반도체 호황”…삼성전자 실적 기대감",
    '"콩물만 마셨는데 3kg 감량?" 이소라, 직접 만든 \'콩 스무디\'',
    "대학 기숙사서 전염성 강한 '옴' 발생…감염자 '즉시 귀가'",
    "北 미사일 발사에 美 규탄… 與野 한목소리",
    "원·달러 환율 1,443원 출발...외국인 순매도",
    "프로야구 LG, 두산에 5-3 역전승(종합)",
    "檢, 前 장관 구속영장 청구 [단독]",
    "【포토】 벚꽃축제 개막…상춘객 북적",
    "K-조선 '슈퍼사이클' 기대감↑…목표가 상향",
    "기온 13∼15도…주말엔 다시 봄비",
    "손흥민 4경기 연속골 폭발…토트넘 20 승리종합",
]


def fixture_headlines() -> list[str]:
    return [r["title"] for r in make_ynat_rows(per_template=3)] + [t for t, _ in GOLD] + STYLED


@cache
def real_headlines(source: str) -> tuple[str, ...]:
    """PER_SOURCE headlines of one shared-data file, a seeded sample (the same every run)."""
    with (SHARED_DATA / SOURCES[source]).open(encoding="utf-8", newline="") as fh:
        titles = [r["title"] for r in csv.DictReader(fh) if r["title"].strip()]
    return tuple(random.Random(19).sample(titles, PER_SOURCE))


def edited(titles, edit: str) -> list[tuple[str, str]]:
    """(headline, its edit) for every headline the edit changes."""
    pairs = [(t, EDITS[edit](t, random.Random(t))) for t in titles]
    return [(t, e) for t, e in pairs if e != t]


def assert_same_model_text(titles, edit: str, at_least: int) -> None:
    pairs = edited(titles, edit)
    assert len(pairs) >= at_least, f"{edit!r} changed only {len(pairs)} headlines"
    broken = [(t, e, model_text(t), model_text(e)) for t, e in pairs if model_text(t) != model_text(e)]
    assert not broken, f"{len(broken)} of {len(pairs)} differ, e.g. {broken[:3]}"


# --- text level ---------------------------------------------------------------------------------------------
# how many fixture headlines each edit must reach (every edit must test something)
FIXTURE_REACH = {"quotes removed": 5, "… to ...": 5, "... to …": 1, "spaced …": 5, "· as ㆍ": 1,
                 "hanja for Hangul": 3, "Hangul for hanja": 3}


@pytest.mark.parametrize("edit", EDITS)
def test_model_text_ignores_style_edits_of_fixture_headlines(edit):
    assert_same_model_text(fixture_headlines(), edit, at_least=FIXTURE_REACH.get(edit, 50))


# Style marks a source does not use cannot be removed from it (YNAT has no quotes), nor Hangul for hanja where the
# source writes none: those edits need only reach a few headlines; every other edit reaches most.
SPARSE = {"quotes removed", "… to ...", "... to …", "spaced …", "· as ㆍ", "hanja for Hangul", "Hangul for hanja"}


@pytest.mark.shared_data
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("edit", EDITS)
def test_model_text_ignores_style_edits_of_real_headlines(source, edit):
    if source == "ynat" and edit == "quotes removed":
        pytest.skip("YNAT has no quotes to remove (KLUE deleted them)")
    assert_same_model_text(real_headlines(source), edit, at_least=1 if edit in SPARSE else PER_SOURCE // 2)


@pytest.mark.shared_data
def test_no_style_mark_survives_in_any_source():
    marks = re.compile(f"[{re.escape(QUOTE_MARKS)}\\[\\](){{}}<>【】〈〉…⋯‥·ㆍ・‧∙•,?!:;/-]")
    for source in SOURCES:
        left = [model_text(t) for t in real_headlines(source) if marks.search(model_text(t))]
        assert not left, (source, left[:3])


# --- hypothesis: any headline-like text -----------------------------------------------------------------------
WORDS = ["경찰", "국회", "코스피", "프로야구", "체포", "속보", "종합", "단독", "윤", "야당", "여야", "북한", "미국",
         *HANJA_PAIRS, *HANJA_SINGLE, *MODEL_HANJA_PAIRS, *MODEL_HANJA_SINGLE, "1.5%", "3-0", "13∼15도", "24%↑",
         "1,443원", "K-조선", "U.S.", "(종합2보)", "[단독]", "[오늘의 운세]", "…", "...", "·", ",", "?", "!", "‘", "”", "'", '"', "ＫＯＳＰＩ", "①", "\u200b"]
_odd = st.characters(categories=["L", "Nd", "P", "S"]).filter(
    lambda c: not any(unicodedata.category(x).startswith("M") or "\u1100" <= x <= "\u11ff" or "\ud7b0" <= x
                      for x in unicodedata.normalize("NFKC", c)))  # no combining marks or conjoining jamo: NFC fuses
word = st.one_of(st.sampled_from(WORDS), st.text(_odd, min_size=1, max_size=3))
headline = st.lists(word, min_size=1, max_size=12).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(headline, st.sampled_from(list(EDITS)), st.integers(0, 2**16))
def test_model_text_of_an_edit_is_the_model_text(title, edit, seed):
    assert model_text(EDITS[edit](title, random.Random(seed))) == model_text(title)


@settings(max_examples=100, deadline=None)
@given(headline)
def test_model_text_is_its_own_model_text(title):
    once = model_text(title)
    assert model_text(once) == once and once == " ".join(once.split())


# --- model level ----------------------------------------------------------------------------------------------
TOPIC = {"정치": "politics", "경제": "business", "스포츠": "sports", "사회": "crime"}


@pytest.fixture(scope="module")
def tfidf():
    """A small TF-IDF model trained on the fixture headlines (a second or two)."""
    rows = make_ynat_rows()
    model = TfidfModel(TfidfConfig(min_df=1, subword_vocab=300))
    return model.fit([r["title"] for r in rows], [TOPIC.get(r["label"], "other") for r in rows], seed=3)


def assert_same_answers(model, titles, edit: str) -> None:
    pairs = edited(titles, edit)
    if not pairs:
        return
    before = predict_titles(model, [t for t, _ in pairs], abstain=False)
    after = predict_titles(model, [e for _, e in pairs], abstain=False)
    for (t, e), a, b in zip(pairs, before, after, strict=True):
        assert a["label"] == b["label"], (t, e, a["label"], b["label"])
        gap = max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"])
        assert gap <= 1e-6, (t, e, a["scores"], b["scores"])


@pytest.mark.parametrize("edit", EDITS)
def test_tfidf_answer_ignores_style_edits_of_fixture_headlines(tfidf, edit):
    assert_same_answers(tfidf, fixture_headlines(), edit)


@pytest.mark.shared_data
@pytest.mark.parametrize("edit", EDITS)
def test_tfidf_answer_ignores_style_edits_of_real_headlines(tfidf, edit):
    assert_same_answers(tfidf, [t for source in SOURCES for t in real_headlines(source)], edit)


def test_quoted_sports_headline_scores_as_the_unquoted_one(tfidf):
    """The issue's example: with quotes it was business (sports 0.02), without them sports (0.90)."""
    raw = np.asarray(tfidf.predict_raw(["‘이재성 65분 활약’ 마인츠, 아우에 3-0 격파", "이재성 65분 활약 마인츠 아우에 30 격파"]))
    assert np.abs(raw[0] - raw[1]).max() <= 1e-6


def test_a_model_trained_on_other_text_is_refused(tfidf, tmp_path):
    """A model saved before model_text (or with another TEXT_VERSION) would read other text than it learned from."""
    import json

    from pipeline.cli import UserError
    from pipeline.models import load_model

    tfidf.save(tmp_path)
    assert load_model(tmp_path).predict_raw(["코스피 상승"]).shape == (1, len(tfidf.labels))
    meta = json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))
    del meta["text"]
    (tmp_path / "model.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(UserError, match="retrain"):
        load_model(tmp_path)
