"""Korean-aware headline normalisation: the one place that decides what a headline's text is.

Two texts come out of a raw headline:

- `normalize_title` (ingest, labeling, gold, dedupe): `.text` is the headline cleaned but in its own style
  (quotes, tags and ellipses unified, not removed), which the labeling rules read; `.key` is the dedupe key.
- `model_text` (every model kind, at training and at prediction, through `TopicModel.texts`): the same words
  with every mark of style removed, so that what a model sees does not tell which source a headline came from.
  KLUE normalised YNAT (the only sports source) by deleting quotes, brackets and ASCII punctuation other than
  `.` and `%`; listing and RSS headlines keep them, and a model learned "no quotes -> sports". `model_text`
  writes every source the way KLUE wrote YNAT, and turns the separators both keep (ellipses, middle dots) into
  spaces, so a quote, a `[속보]` or a `...` for `…` changes nothing a model reads.

    >>> n = normalize_title("[속보] 尹, 野 대표와 회동…“민생 협치”")
    >>> n.text, n.tags
    ('[속보] 윤, 야당 대표와 회동… "민생 협치"', ('속보',))
    >>> model_text("[속보] 尹, 野 대표와 회동…“민생 협치”")
    '윤 야당 대표와 회동 민생 협치'
"""

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

# Longest limit we accept for one headline; real headlines are < 150 characters.
MAX_TITLE_CHARS = 500

# Hanja abbreviations common in Korean headlines, expanded to the Hangul word they stand for so
# that "北" and "북한" share features. Pairs come first: "與野" is 여야, not 여당야당.
HANJA_PAIRS = {
    "與野": "여야", "韓美": "한미", "韓日": "한일", "韓中": "한중", "美中": "미중", "美日": "미일",
    "北美": "북미", "北中": "북중", "北露": "북러", "南北": "남북", "中企": "중소기업",
}
# Single characters are expanded only when they stand alone (not inside a longer hanja word).
HANJA_SINGLE = {
    # countries
    "韓": "한국", "北": "북한", "美": "미국", "中": "중국", "日": "일본", "英": "영국", "獨": "독일",
    "佛": "프랑스", "露": "러시아", "印": "인도", "臺": "대만", "歐": "유럽", "濠": "호주",
    # institutions and roles
    "與": "여당", "野": "야당", "靑": "청와대", "檢": "검찰", "警": "경찰", "軍": "군", "前": "전", "現": "현",
    "故": "고", "新": "신", "反": "반", "親": "친", "非": "비", "對": "대", "副": "부",
    # company suffixes: 현대重, 삼성電, 현대車, 우리銀
    "重": "중공업", "電": "전자", "車": "자동차", "銀": "은행",
    # surnames of presidents and party leaders, read as Hangul
    "尹": "윤", "李": "이", "文": "문", "朴": "박", "金": "김", "洪": "홍", "安": "안",
}

# More abbreviations, expanded in the model's text only (normalize_title's text and key stay as they were: a
# dedupe key holds the hanja). Listing and RSS headlines use them far more than YNAT does (headlines per 100
# holding one, YNAT vs the other four sources: 男 0.02 vs 0.24-0.82, 株 0.04 vs 0-0.30, 證 0.02 vs 0-0.34,
# 發 0.01 vs 0.03-0.19, 李 written as the compatibility ideograph U+F9E1 0.01 vs 0.30-1.38 (NFKC unifies it)), so
# "40대男" must read as YNAT's "40대 남성".
MODEL_HANJA_PAIRS = {"外人": "외국인"}
MODEL_HANJA_SINGLE = {
    "男": "남성", "女": "여성", "株": "주", "證": "증권", "法": "법", "發": "발", "戰": "전", "比": "대비", "兆": "조",
    "外": "외", "伊": "이탈리아", "吳": "오", "張": "장",
}

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


def _hanja_expander(pairs: dict[str, str], singles: dict[str, str]) -> Callable[[str], str]:
    """Text -> text with `pairs` expanded, then the `singles` that stand alone (not inside a longer hanja word)."""
    pair_re = re.compile("|".join(map(re.escape, pairs)))
    single_re = re.compile(rf"(?<![{_HAN}])([{''.join(singles)}])(?![{_HAN}])")

    def expand(text: str) -> str:
        return single_re.sub(lambda m: singles[m.group(1)], pair_re.sub(lambda m: pairs[m.group(0)], text))

    return expand


_expand_headline_hanja = _hanja_expander(HANJA_PAIRS, HANJA_SINGLE)
_expand_model_hanja = _hanja_expander(HANJA_PAIRS | MODEL_HANJA_PAIRS, HANJA_SINGLE | MODEL_HANJA_SINGLE)

_QUOTES = str.maketrans({
    "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"', "「": '"', "」": '"',
    "『": '"', "』": '"', "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'",
    "【": "[", "】": "]", "〔": "[", "〕": "]", "［": "[", "］": "]", "〈": "<", "〉": ">",
})
# Zero-width characters and the soft hyphen are deleted by the same table (one pass over the text, not two).
_QUOTES.update(dict.fromkeys([*range(0x200B, 0x2010), 0x2060, 0xFEFF, 0x00AD]))
_ELLIPSIS = re.compile(r"(?:\.{2,}|⋯|…|‥|·{3,})+")
_SPACE = re.compile(r"\s+")
# Leading/trailing bracket tags such as [속보], [단독], [사건 포커스], [헬시타임], (종합2보).
_LEAD_TAG = re.compile(r"^\[([^\[\]]{1,20})\]\s*")
_TRAIL_TAG = re.compile(r"\s*(?:\[([^\[\]]{1,20})\]|\((종합\d*보?|\d+보|속보|상보|단독)\))$")
_KEY_DROP = re.compile(rf"[^0-9a-z가-힣{_HAN}]+")
_HANGUL = re.compile("[가-힣ㄱ-ㅎㅏ-ㅣ]")
# Lone surrogates: Python's stand-ins for bytes that were not UTF-8 (a title from argv); no text encodes them.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class NormalizedTitle:
    text: str  # full normalised headline, tags kept: what models see
    tags: tuple[str, ...]  # bracket tags, in order (e.g. ("속보",)); no topic of their own
    key: str  # dedupe key: the untagged headline reduced to letters/digits, so quote/space variants collide


def expand_hanja(text: str) -> str:
    """Replace headline hanja abbreviations (尹, 野, 北, 與野, ...) with their Hangul words."""
    return _expand_headline_hanja(text)


def _unified(raw: str) -> str:
    """NFKC, zero-width characters dropped, quote/bracket/ellipsis glyphs unified; hanja and spaces as given."""
    text = unicodedata.normalize("NFKC", raw)
    return _ELLIPSIS.sub("… ", text.translate(_QUOTES))


def clean_text(raw: str) -> str:
    """NFKC, unified quotes/brackets/ellipses, hanja abbreviations expanded, single spaces."""
    return _SPACE.sub(" ", expand_hanja(_unified(raw))).strip()


def split_tags(text: str) -> tuple[str, tuple[str, ...]]:
    """Peel bracket tags off both ends of a cleaned headline: (body, tags)."""
    lead: list[str] = []
    trail: list[str] = []
    while m := _LEAD_TAG.match(text):
        lead.append(m.group(1).strip())
        text = text[m.end():]
    while (m := _TRAIL_TAG.search(text)) and m.start() > 0:
        trail.insert(0, (m.group(1) or m.group(2)).strip())
        text = text[: m.start()]
    return text.strip(), tuple(lead + trail)


def normalize_title(raw: str) -> NormalizedTitle:
    text = clean_text(raw)
    body, tags = split_tags(text)
    return NormalizedTitle(text=text, tags=tags, key=_KEY_DROP.sub("", body.lower()))


# --- the model's text -------------------------------------------------------------------------------------
# Separators that every source has between phrases, each in its own glyphs: ellipses (unified to "…" above),
# middle dots (· and the look-alikes ㆍ ・ ‧ ∙ • ⋅ that outlets type for it; NFKC has made ㆍ the jamo U+119E)
# and slashes ("원/달러" is "원·달러"; NFKC writes YNAT's ⅔ as 2⁄3, others type 2/3). A space keeps the two words
# apart whichever glyph was used.
_SEPARATORS = "…·\u119eㆍ・‧∙•⋅/⁄"
# So is a full stop that is not a decimal point: "중소.벤처", "들어선다.", "U.S." (1.5% keeps its point).
_POINT = re.compile(r"(?<!\d)\.|\.(?!\d)")
# Range marks: YNAT writes 13∼15도, listings 13~15도, some 13 ~ 15도 (〜 is a wave dash, typed for the same).
_RANGES = "∼〜"
_RANGE = re.compile(r"\s*~\s*")
# Up/down arrows read as part of the figure before them (목표가↑, 24%↑); outlets differ in a space before them.
_ARROW = re.compile(r"\s+(?=[↑↓])")
# Tags KLUE's deletion of brackets left in YNAT as bare words: "...선언종합" for "...선언(종합)", "8.0%속보",
# "속보 홍콩정부..." (one YNAT headline in ten ends in 종합; no other source has a bare one). split_tags drops the
# bracketed forms of the same tags, so these go too. Only report-status words: a bare 단독 may be "단독 선두".
_BARE_LEAD = re.compile(r"^(?:속보|\d+보) ")
_BARE_TRAIL = re.compile(r"(?:종합\d*보?|(?<!\d)\d+보|속보|상보)$")


def _model_chars() -> dict[int, str | None]:
    """The one str.translate table of model_text: separators -> space, range marks -> "~", and deleted: every
    punctuation character (Unicode category P*) but "." and "%", with the ASCII symbols KLUE also deleted from
    YNAT (+ = < > | ^ `): quotes, brackets, commas, ?, !, dashes, colons, &, #, ... A deletion, not a space, as
    KLUE did: YNAT reads "토트넘 20 승리" for 2-0, "SP" for S&P, "옴이" for '옴'이, and the other sources must read
    the same. Bullets and ornaments (◇ ○ ▶ ★ ♥: Geometric Shapes to Dingbats) go too; arrows (목표가↑) stay.
    Only the blocks where punctuation lives are scanned (Latin, General and Supplemental Punctuation, CJK
    Symbols and Punctuation, small and full-width forms): enough after NFKC, and cheap at import."""
    blocks = [range(0x2E80), range(0x3000, 0x3040), range(0xFE10, 0xFE70), range(0xFF00, 0xFF66)]
    marks = {cp for block in blocks for cp in block if unicodedata.category(chr(cp)).startswith("P")}
    marks |= {cp for cp in range(0x25A0, 0x27C0) if unicodedata.category(chr(cp)) == "So"} | set(map(ord, "+=<>|^`"))
    table: dict[int, str | None] = dict.fromkeys(marks - set(map(ord, ".%")))
    return table | dict.fromkeys(map(ord, _SEPARATORS), " ") | dict.fromkeys(map(ord, _RANGES), "~")


_MODEL_CHARS = _model_chars()
# Which model_text a saved model was trained on (pipeline.models.base writes it into model.json and refuses to load
# a model of another): change it whenever model_text answers differently for some headline, or a model trained
# before would silently read other text at prediction than it learned from.
TEXT_VERSION = "model_text/1"


def model_text(raw: str) -> str:
    """What every model reads, at training and at prediction: the headline's words without the marks of its
    source's style. Bracket tags at either end ([속보], [단독], (종합2보), 【포토】, [오늘의 운세]; see split_tags)
    dropped; ellipses, middle dots, slashes and non-decimal full stops made spaces; quotes, other brackets'
    marks and punctuation deleted (their words kept); hanja abbreviations expanded (MODEL_HANJA_* too); NFKC,
    no zero-width characters, single spaces.

        >>> model_text("‘이재성 65분 활약’ 마인츠, 아우에 3-0 격파")
        '이재성 65분 활약 마인츠 아우에 30 격파'
    """
    body, _ = split_tags(" ".join(_unified(raw).split()))
    if "." in body:
        body = _POINT.sub(" ", body)
    # hanja after the marks are gone, so that a quote between two hanja ("與‘野’") reads as if it were not there
    body = _expand_model_hanja(body.translate(_MODEL_CHARS))
    if "~" in body:
        body = _RANGE.sub("~", body)
    if "↑" in body or "↓" in body:
        body = _ARROW.sub("", body)
    body = " ".join(body.split())  # what \s+ -> " " does (the same Unicode whitespace), three times faster
    # (also when nothing is left: "[포토](종합)" is a tag and its tag, as split_tags reads "[포토]" alone)
    while body.endswith(("보", "종합")) and (m := _BARE_TRAIL.search(body)):
        body = body[: m.start()].rstrip()
    while body.startswith(("속보 ", *"0123456789")) and (m := _BARE_LEAD.match(body)):
        body = body[m.end():]
    return body


def title_problem(raw: str) -> str | None:
    """Why a string cannot be classified as a Korean headline, or None when it can."""
    if not raw or not raw.strip():
        return "empty title"
    if len(raw) > MAX_TITLE_CHARS:
        return f"title too long ({len(raw)} characters; a headline has at most {MAX_TITLE_CHARS})"
    if _SURROGATE.search(raw):
        return "title is not valid UTF-8 text"
    if not _HANGUL.search(raw):
        return "title has no Korean (Hangul) text; this model classifies Korean headlines"
    return None
