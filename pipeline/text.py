"""Korean-aware headline normalisation: the one place that decides what a headline's text is.

Every stage (ingest, labeling, training, prediction) calls `normalize_title`, so the text a model
sees at training time is exactly the text it sees at prediction time.

    >>> n = normalize_title("[속보] 尹, 野 대표와 회동…“민생 협치”")
    >>> n.text, n.tags
    ('[속보] 윤, 야당 대표와 회동… "민생 협치"', ('속보',))
"""

import re
import unicodedata
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

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_PAIR_RE = re.compile("|".join(map(re.escape, HANJA_PAIRS)))
_SINGLE_RE = re.compile(rf"(?<![{_HAN}])([{''.join(HANJA_SINGLE)}])(?![{_HAN}])")

_QUOTES = str.maketrans({
    "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"', "「": '"', "」": '"',
    "『": '"', "』": '"', "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'",
    "【": "[", "】": "]", "〔": "[", "〕": "]", "［": "[", "］": "]", "〈": "<", "〉": ">",
})
_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad]")
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
    text = _PAIR_RE.sub(lambda m: HANJA_PAIRS[m.group(0)], text)
    return _SINGLE_RE.sub(lambda m: HANJA_SINGLE[m.group(1)], text)


def clean_text(raw: str) -> str:
    """NFKC, unified quotes/brackets/ellipses, hanja abbreviations expanded, single spaces."""
    text = unicodedata.normalize("NFKC", raw)
    text = _ZERO_WIDTH.sub("", text).translate(_QUOTES)
    text = _ELLIPSIS.sub("… ", text)
    text = expand_hanja(text)
    return _SPACE.sub(" ", text).strip()


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
