import pytest

from pipeline import LABELS
from pipeline.config import CONFIG_DIR, LabelConfig, Rule, load_config
from pipeline.label import Labeler, label_table, rule_counts
from pipeline.labelmodel import LabelModel, smoothed_accuracy
from pipeline.manual import read_manual
from pipeline.text import normalize_title


@pytest.fixture(scope="module")
def labeler():
    return Labeler(load_config(LabelConfig, CONFIG_DIR / "labels.yaml"))


def label(labeler, title, section=""):
    """(label, agreeing rules) for one headline through the repo's label model, without gold."""
    result = label_table(corpus_rows([(title, section)]), [], labeler.cfg, manual={})
    return result.rows[0]["label"], result.rows[0]["rule"]


@pytest.mark.parametrize("section, topic", [("정치", "politics"), ("경제", "business"), ("스포츠", "sports"),
                                            ("Politics", "politics"), ("Economic", "business"), ("Culture", "other")])
def test_section_map(labeler, section, topic):
    assert label(labeler, "새 방침 나왔다", section) == (topic, f"section:{section}")


@pytest.mark.parametrize("section", ["사회", "세계", "IT과학", "Society", "World", ""])
def test_unmapped_sections_give_no_label(labeler, section):
    assert label(labeler, "새 방침 나왔다", section) == ("", "")


@pytest.mark.parametrize("title, rule", [
    ("아파트서 이웃 살해한 30대 남성", "crime_act"),
    ("보이스피싱 수거책 20대 붙잡혀", "crime_act"),
    ("음주운전 사고 낸 공무원", "crime_act"),
    ("경찰, 20대 남성 구속영장 신청", "crime_justice"),
    ("前 회장 징역 3년 집행유예 5년", "crime_justice"),
    ("檢, 전 회장 배임 혐의 기소", "crime_justice"),
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


def test_crime_rule_and_section_both_vote(labeler):
    votes = labeler.votes(normalize_title("검찰, 국회의원 뇌물 혐의 기소").text, "Politics")
    assert {label for _, label in votes} >= {"crime", "politics"}


@pytest.mark.parametrize("title", [
    "농협, 우수사업 시상식 개최",  # 수사 inside 우수사업
    "넷플릭스 실적발표 앞두고 주가 상승",  # 적발 inside 실적발표
    "방위조약 논의 착수",  # 위조 inside 방위조약
    "지배구조 개편안 발표",  # 배구 inside 지배구조
])
def test_substrings_of_longer_words_do_not_vote(labeler, title):
    names = {name for name, _ in labeler.votes(normalize_title(title).text)}
    assert not names & {"crime_act", "crime_justice", "sports_keywords"}


def test_label_model_weighs_votes_by_accuracy():
    model = LabelModel(LABELS, {"good": 0.95, "weak": 0.6})
    assert model.vote([("good", "crime"), ("weak", "politics")], 0.5)[0] == "crime"
    assert model.vote([("weak", "politics")], 0.7) == ("", pytest.approx(0.6))  # abstains below threshold
    label, confidence = model.vote([("good", "crime"), ("weak", "crime")], 0.5)
    assert label == "crime" and confidence > 0.95  # agreement raises confidence
    assert model.vote([], 0.0) == ("", 0.0)


def test_a_section_does_not_outvote_a_crime_rule():
    """No source has a crime section: a Politics-section listing of a politician's criminal case is crime when
    a crime rule fires, while the section alone still says politics."""
    accuracies = {"section:Politics": 0.95, "crime_justice": 0.9}
    blind = LabelModel(LABELS, accuracies, {"section:Politics": ("crime",)})
    plain = LabelModel(LABELS, accuracies)
    votes = [("section:Politics", "politics"), ("crime_justice", "crime")]
    assert blind.vote(votes, 0.6)[0] == "crime" and plain.vote(votes, 0.6)[0] == "politics"
    assert blind.vote(votes[:1], 0.6) == plain.vote(votes[:1], 0.6)  # no crime vote: blindness is moot
    assert blind.posterior(votes[:1])[LABELS.index("politics")] > 0.9


def test_smoothed_accuracy_stays_near_prior_with_few_hits():
    assert smoothed_accuracy(1, 1, prior=0.8, strength=10) == pytest.approx(9 / 11)
    assert smoothed_accuracy(90, 100, prior=0.8, strength=10) == pytest.approx(98 / 110)


def corpus_rows(titles_sections):
    return [{"title": t, "text": normalize_title(t).text, "key": normalize_title(t).key, "section": s}
            for t, s in titles_sections]


def annotated(items, part="fit"):
    return [{"title": t, "label": label, "source": "s", "file": "labels", "key": normalize_title(t).key, "part": part}
            for t, label in items]


def test_analysis_reports_coverage_overlap_conflict_and_annotation_precision():
    cfg = LabelConfig(section_map={"Politics": "politics"}, rules=(Rule(name="arrest", label="crime", patterns=("체포",)),))
    headlines = corpus_rows([("여야 합의", "Politics"), ("의원 체포", "Politics"), ("절도범 체포", ""),
                             ("여야 대표 회동", "Politics")])
    gold = [{"title": "여야 대표 회동", "label": "politics"}]
    notes = annotated([("여야 합의", "politics"), ("의원 체포 동의안", "politics")], part="tune")
    result = label_table(headlines, gold, cfg, manual={}, annotations=notes)
    stats = {s.name: s for s in result.stats}
    # the gold headline and the tune-part ones are not in the table (the second joined it, then left)
    assert result.n_gold == 3 and [r["title"] for r in result.rows] == ["의원 체포", "절도범 체포"]
    assert stats["arrest"].coverage == pytest.approx(1.0)
    assert stats["arrest"].overlap == pytest.approx(0.5) and stats["arrest"].conflict == pytest.approx(0.5)
    assert stats["section:Politics"].tune_hits == 1 and stats["section:Politics"].tune_precision == 1.0
    assert stats["arrest"].tune_hits == 1 and stats["arrest"].tune_precision == 0.0
    assert stats["arrest"].accuracy < stats["section:Politics"].accuracy


def test_gold_never_weighs_the_functions():
    cfg = LabelConfig(section_map={}, rules=(Rule(name="arrest", label="crime", patterns=("체포",)),))
    gold = [{"title": f"피의자 {i}명 체포", "label": "politics"} for i in range(40)]  # the rule is always wrong there
    stats = label_table(corpus_rows([("절도범 체포", "")]), gold, cfg, manual={}).stats
    assert stats[0].tune_hits == 0 and stats[0].accuracy == pytest.approx(cfg.prior_accuracy)


def test_fit_part_annotations_override_rules_and_manual_labels_override_both():
    cfg = LabelConfig(section_map={}, rules=(Rule(name="arrest", label="crime", patterns=("체포",)),))
    rows = corpus_rows([("의원 체포 동의안 가결", ""), ("절도범 체포", "")])
    notes = annotated([("의원 체포 동의안 가결", "politics"), ("절도범 체포", "crime")])
    result = label_table(rows, [], cfg, manual={rows[1]["key"]: "other"}, annotations=notes)
    assert [(r["label"], r["rule"]) for r in result.rows] == [("politics", "annotation"), ("other", "manual")]


def test_a_rule_blind_to_crime_does_not_outvote_a_crime_rule():
    rules = (Rule(name="arrest", label="crime", patterns=("체포",)),
             Rule(name="politics_words", label="politics", patterns=("의원",)))
    title = [("의원 뇌물 혐의 체포", "")]
    seeing = label_table(corpus_rows(title), [], LabelConfig(section_map={}, rules=rules), manual={}).rows[0]
    blind_rules = (rules[0], rules[1].model_copy(update={"blind_to": ("crime",)}))
    blind = label_table(corpus_rows(title), [], LabelConfig(section_map={}, rules=blind_rules), manual={}).rows[0]
    assert seeing["label"] == "" and blind["label"] == "crime"  # a tie abstains; a blind vote leaves crime ahead


def test_multi_valued_sections_vote_once_per_label():
    labeler = Labeler(LabelConfig(section_map={"economy": "business", "finance": "business", "sports": "sports"}))
    assert labeler.votes("무엇", "economy|finance") == [("section:economy", "business")]
    assert labeler.votes("무엇", "it|sports") == [("section:sports", "sports")]
    assert labeler.votes("무엇", "society") == []


def test_manual_labels_override_every_rule():
    cfg = LabelConfig(section_map={}, rules=(Rule(name="arrest", label="crime", patterns=("체포",)),))
    rows = corpus_rows([("절도범 체포", ""), ("날씨 맑음", "")])
    result = label_table(rows, [], cfg, manual={rows[0]["key"]: "other", rows[1]["key"]: "other"})
    assert [(r["label"], r["rule"]) for r in result.rows] == [("other", "manual"), ("other", "manual")]


def test_read_manual_keeps_latest_decision(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("key,title,label,decided_at\na,A,crime,t1\na,A,politics,t2\nb,B,crime,t1\nb,B,skip,t2\n",
                    encoding="utf-8")
    assert read_manual(path) == {"a": "politics"}


def test_label_table_counts_per_rule(labeler):
    rows = corpus_rows([("여야 합의", "Politics"), ("경찰, 절도범 체포", ""), ("그냥 문장", "")])
    result = label_table(rows, [{"title": "[속보] 여야 합의", "label": "politics"}], labeler.cfg, manual={})
    assert result.n_gold == 1 and [r["label"] for r in result.rows] == ["crime", ""]
    assert rule_counts(result.rows)["crime_justice"] == 1
