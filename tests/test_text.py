import pytest

from pipeline.text import (
    MAX_TITLE_CHARS,
    clean_text,
    expand_hanja,
    model_text,
    normalize_title,
    split_tags,
    title_problem,
)


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


# --- model_text: one text for every source's style (tests/test_metamorphic.py has the edits) ---------------------


def test_model_text_of_the_issues_sports_headline():
    assert model_text("‘이재성 65분 활약’ 마인츠, 아우에 3-0 격파") == "이재성 65분 활약 마인츠 아우에 30 격파"


@pytest.mark.parametrize("listing, ynat", [
    ("프로야구 LG, 두산에 5-3 역전승", "프로야구 LG 두산에 53 역전승"),  # KLUE deleted marks: YNAT reads "토트넘 20 승리"
    ("[속보] 尹, 野 대표와 회동…“민생 협치”", "속보 윤 야당 대표와 회동…민생 협치"),  # YNAT's bare 속보 first
    ("카슈끄지 살해 1년…변한 건 없다(종합2보)", "카슈끄지 살해 1년…변한 건 없다종합2보"),  # and 종합 glued last
    ("원/달러 환율 1,443원… 수입물가 부담", "원·달러 환율 1443원…수입물가 부담"),
    ("기온 13 ~ 15도", "기온 13∼15도"),
    ("WTI 0.8% ↑", "WTI 0.8%↑"),
    ("중소.벤처기업 지원", "중소·벤처기업 지원"),
    ("S&P, 현대차 등급 하향", "SP 현대차 등급 하향"),
    ("대학 기숙사서 '옴'이 발생", "대학 기숙사서 옴이 발생"),
    ("北 미사일에 美 규탄", "북한 미사일에 미국 규탄"),
    ("흉기 휘두른 40대男 체포…法 “도망 우려”", "흉기 휘두른 40대남성 체포…법 도망 우려"),
    ("與‘野’ 합의", "與野 합의"),  # a deleted quote between two hanja: read as the pair, 여야
])
def test_model_text_is_the_same_in_every_sources_style(listing, ynat):
    assert model_text(listing) == model_text(ynat)


def test_model_text_keeps_decimals_percent_and_words_of_brackets():
    assert model_text("국민 76.5% 찬성… U.S. 지지") == "국민 76.5% 찬성 U S 지지"
    assert model_text("삼성전자(005930) 주가") == "삼성전자005930 주가"
    assert model_text("[단독]") == "" and model_text("【포토】(종합)") == ""


def test_model_text_leaves_normalize_title_as_it_was():
    raw = "[속보] 尹, 野 대표와 회동…“민생 협치”"
    assert normalize_title(raw).text == '[속보] 윤, 야당 대표와 회동… "민생 협치"'
    assert model_text(raw) == "윤 야당 대표와 회동 민생 협치"
    # the model's extra hanja leave the labeling text and the dedupe key alone
    assert normalize_title("40대男 체포").text == "40대男 체포" and model_text("40대男 체포") == "40대남성 체포"
