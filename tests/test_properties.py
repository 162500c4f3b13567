"""Properties over any input (hypothesis): normalisation never fails, predict answers every title with a
label and scores or with an `error`, and `--input` writes exactly one object per input line."""

import io
import json
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import TfidfConfig
from pipeline.models.tfidf import TfidfModel
from pipeline.predict import predict_stream, predict_titles
from pipeline.text import _HAN, HANJA_PAIRS, HANJA_SINGLE, MAX_TITLE_CHARS, normalize_title
from tests.conftest import make_ynat_rows

SETTINGS = settings(max_examples=60, deadline=None)
TOPIC = {"정치": "politics", "경제": "business", "스포츠": "sports", "사회": "crime"}

# What headlines are made of, so that examples reach the interesting paths: Hangul, headline hanja, quotes,
# brackets and tags, ellipses, odd spaces and zero-width characters.
PIECES = ["경찰", "국회", "코스피", "프로야구", "[속보]", "(종합2보)", "[단독] ", "…", "...", "“", "”", "‘", "’",
          "「", "」", "【", "】", "\u200b", "\ufeff", "\u00ad", "\u3000", "\t", " ", "ＫＯＳＰＩ", "①", "㈜",
          *HANJA_PAIRS, *HANJA_SINGLE, "가", "힣", "ㄱ", "ㅏ", "1", "a", "Z", "\r", "\x00"]
headline_like = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=30).map("".join)
# any Unicode string: every code point, lone surrogates too (what argv holds for bytes that are not UTF-8),
# also amid Korean text, where they reach the model unless rejected first
any_text = st.one_of(st.text(st.characters(codec=None, exclude_categories=())), headline_like,
                     st.lists(st.sampled_from(["경찰", "체포", " ", "\ud800", "\udcff"]), max_size=8).map("".join),
                     st.text(min_size=MAX_TITLE_CHARS - 2, max_size=MAX_TITLE_CHARS + 2, alphabet="경찰 체포"))
KEY = re.compile(rf"[0-9a-z가-힣{_HAN}]*")
JOINING = re.compile("[\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff]")  # conjoining Hangul jamo


def joins_its_neighbour(char: str) -> bool:
    """Whether NFKC makes `char` a combining mark or a conjoining jamo: what NFC fuses with the character
    before it."""
    return any(unicodedata.category(c).startswith("M") or JOINING.match(c) for c in unicodedata.normalize("NFKC", char))


# Headline-like text without such characters (PIECES' compatibility jamo ㄱ ㅏ are among them).
stable_like = st.lists(st.one_of(st.sampled_from([p for p in PIECES if not any(map(joins_its_neighbour, p))]),
                                 st.text(st.characters().filter(lambda c: not joins_its_neighbour(c)), max_size=3)),
                       max_size=30).map("".join)


@SETTINGS
@given(any_text)
def test_normalisation_never_fails_and_gives_clean_one_line_text(raw):
    norm = normalize_title(raw)
    assert norm.text == " ".join(norm.text.split())  # single spaces, no line breaks, trimmed
    assert KEY.fullmatch(norm.key)
    assert all(tag in norm.text for tag in norm.tags)


@SETTINGS
@given(stable_like)
def test_normalising_normalised_text_changes_nothing(raw):
    """A normalised headline normalises to itself, key included. Not for every string: zero-width characters
    are dropped after NFKC, quotes rewritten and hanja expanded after it, so a combining mark or a conjoining
    jamo that meets a new neighbour there is fused only by a second pass ("ㄱ\\u200bㅏ", "〈\\u0338",
    "佛\\u11a8": its first key is 프랑스, its second 프랑슥). Headlines hold no such sequences."""
    norm = normalize_title(raw)
    assert normalize_title(norm.text) == norm


@pytest.fixture(scope="module")
def model():
    rows = make_ynat_rows()
    fitted = TfidfModel(TfidfConfig(min_df=1, subword_vocab=300))
    fitted.fit([r["title"] for r in rows], [TOPIC.get(r["label"], "other") for r in rows], seed=3)
    fitted.threshold, fitted.other_threshold = 0.4, 0.5  # abstaining paths too
    return fitted


def check_result(result: dict, title: str | None, model) -> None:
    assert result["title"] == title
    if "error" in result:
        assert result["error"] and result["label"] is None and result["scores"] is None
        return
    assert result["label"] in model.labels
    scores = result["scores"]
    assert set(scores) == {label for label in model.labels if label != "other"}
    assert all(0 <= s <= 1 for s in scores.values()) and sum(scores.values()) <= 1 + 1e-6
    assert 0 <= result["confidence"] <= 1


@SETTINGS
@given(titles=st.lists(any_text, max_size=8), abstain=st.booleans())
def test_predict_answers_every_title_with_a_label_or_an_error(model, titles, abstain):
    results = predict_titles(model, titles, abstain)
    assert len(results) == len(titles)
    for title, result in zip(titles, results, strict=True):
        check_result(result, title, model)


line_bytes = st.one_of(st.binary(max_size=40), headline_like.map(str.encode),
                       st.sampled_from([b"", b"\r", b"\xff", "경찰 체포".encode() + b"\xc3", b"\xef\xbb\xbf"]))


@SETTINGS
@given(lines=st.lists(line_bytes, max_size=12), final_newline=st.booleans())
def test_input_writes_exactly_one_object_per_input_line(model, lines, final_newline):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    out = io.StringIO()
    n, errors = predict_stream(model, io.BytesIO(data), out)
    expected = data.split(b"\n")  # what a line is: up to a \n, and a last one without it
    if not data or data.endswith(b"\n"):
        expected.pop()
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert n == len(results) == len(expected) and errors == sum("error" in r for r in results)
    for number, (raw, result) in enumerate(zip(expected, results, strict=True), start=1):
        raw = raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw
        try:
            title = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            assert result["title"] is None and result["error"].startswith(f"line {number}: not valid UTF-8")
            continue
        check_result(result, title, model)
