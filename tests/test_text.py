import pytest

from pipeline.text import MAX_TITLE_CHARS, clean_text, expand_hanja, normalize_title, split_tags, title_problem


def test_nfkc_and_whitespace():
    assert clean_text("ＫＯＳＰＩ　２８００선\t회복 ") == "KOSPI 2800선 회복"


def test_quotes_and_ellipses_unified():
    assert clean_text("“금리 인하”…‘기대’") == clean_text('"금리 인하"... \'기대\'')
    assert "…" in clean_text("기대⋯상승") and "⋯" not in clean_text("기대⋯상승")


@pytest.mark.parametrize("raw, expected", [
    ("尹, 野 대표와 회동", "윤, 야당 대표와 회동"),
    ("與野 원내대표 합의", "여야 원내대표 합의"),
    ("北 미사일 발사에 美 규탄", "북한 미사일 발사에 미국 규탄"),
    ("中企 대출 늘어", "중소기업 대출 늘어"),
    ("檢, 前 장관 소환", "검찰, 전 장관 소환"),
])
def test_hanja_abbreviations_expanded(raw, expected):
    assert expand_hanja(raw) == expected


def test_hanja_inside_a_hanja_word_is_left_alone():
    assert expand_hanja("日本 방문") == "日本 방문"


def test_bracket_tags_split_off_both_ends():
    assert split_tags("[속보] [단독] 여야 합의(종합2보)") == ("여야 합의", ("속보", "단독", "종합2보"))
    assert split_tags("우울증 위험 [헬시타임]") == ("우울증 위험", ("헬시타임",))
    # a bracket in the middle is part of the headline
    assert split_tags("여야 [민생] 합의")[1] == ()


def test_tags_kept_in_text_but_not_in_key():
    a, b = normalize_title("[속보] 경찰, 피의자 체포"), normalize_title("[단독]경찰,  피의자 체포")
    assert a.text.startswith("[속보]") and a.tags == ("속보",)
    assert a.key == b.key


def test_key_ignores_quote_and_punctuation_variants():
    assert normalize_title("“반도체 호황”…삼성 실적").key == normalize_title('"반도체 호황" 삼성 실적').key


def test_normalisation_is_idempotent():
    raw = "[속보] 尹, 野 대표와 회동…“민생 협치”"
    once = normalize_title(raw).text
    assert normalize_title(once).text == once


@pytest.mark.parametrize("raw, problem", [
    ("", "empty"), ("   \t", "empty"), ("Breaking news only", "Korean"), ("가" * (MAX_TITLE_CHARS + 1), "too long"),
])
def test_title_problems(raw, problem):
    assert problem in title_problem(raw)


def test_valid_title_has_no_problem():
    assert title_problem("BTS, 빌보드 1위") is None
