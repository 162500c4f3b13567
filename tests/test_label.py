import pytest

from pipeline.config import CONFIG_DIR, LabelConfig, Rule, load_config
from pipeline.label import Labeler, label_rows, rule_counts
from pipeline.text import normalize_title


@pytest.fixture(scope="module")
def labeler():
    return Labeler(load_config(LabelConfig, CONFIG_DIR / "labels.yaml"))


def label(labeler, title, section=""):
    return labeler.label(normalize_title(title).text, section)


@pytest.mark.parametrize("section, topic", [("정치", "politics"), ("경제", "business"), ("스포츠", "sports"),
                                            ("Politics", "politics"), ("Economic", "business")])
def test_section_map(labeler, section, topic):
    assert label(labeler, "정부, 새 정책 발표", section) == (topic, f"section:{section}")


@pytest.mark.parametrize("section", ["사회", "세계", "IT과학", "Society", "Culture", ""])
def test_unmapped_sections_give_no_label(labeler, section):
    assert label(labeler, "정부, 새 정책 발표", section) == ("", "")


@pytest.mark.parametrize("title, rule", [
    ("아파트서 이웃 살해한 30대 남성", "crime_act"),
    ("보이스피싱 수거책 20대 붙잡혀", "crime_act"),
    ("음주운전 사고 낸 공무원", "crime_act"),
    ("경찰, 20대 남성 구속영장 신청", "crime_justice"),
    ("前 회장 징역 3년 집행유예 5년", "crime_justice"),
    ("檢, 전 장관 기소", "crime_justice"),
])
def test_crime_rules_fire(labeler, title, rule):
    topic, rules = label(labeler, title)
    assert topic == "crime" and rule in rules.split("+")


@pytest.mark.parametrize("title", [
    "살인적 폭염에 온열질환자 급증",  # 살인적 = 'murderous' heat
    "LG 투수, 최고 구속 155km 강속구",  # 구속 = pitch speed
    "헌재, 대통령 탄핵 선고 기일 지정",  # impeachment is politics
    "여야, 특검법 본회의 처리 합의",  # legislation is politics
    "고강도 구조조정 착수",  # 고강도 is not 강도
    "방화벽 보안 업데이트",
])
def test_crime_rules_vetoed(labeler, title):
    assert label(labeler, title)[0] != "crime"


def test_crime_outranks_section_map(labeler):
    assert label(labeler, "검찰, 국회의원 뇌물 혐의 기소", "Politics")[0] == "crime"


def test_conflict_at_equal_priority_abstains():
    cfg = LabelConfig(section_map={"Politics": "politics"}, rules=(Rule("money", "business", ("주가",)),))
    assert Labeler(cfg).label("여당 대표 주가 조작 공방", "Politics") == ("", "conflict:section:Politics+money")


def test_agreeing_rules_are_all_recorded():
    cfg = LabelConfig(section_map={}, rules=(Rule("a", "crime", ("체포",)), Rule("b", "crime", ("경찰",))))
    assert Labeler(cfg).label("경찰, 절도범 체포") == ("crime", "a+b")


def test_gold_keys_are_removed_and_counts_per_rule(labeler):
    rows = [{"title": t, "text": normalize_title(t).text, "key": normalize_title(t).key, "section": s}
            for t, s in [("여야 합의", "Politics"), ("경찰, 절도범 체포", ""), ("날씨 맑음", "")]]
    out, removed = label_rows(rows, labeler, {normalize_title("[속보] 여야 합의").key})
    assert removed == 1 and [r["label"] for r in out] == ["crime", ""]
    assert rule_counts(out)["crime_justice"] == 1
