"""pipeline.propose: mining rule patterns from confident, uncovered headlines."""

import re
import subprocess
import sys
from collections import namedtuple
from datetime import date
from pathlib import Path

import pytest

from pipeline import LABELS, REPO_ROOT
from pipeline.config import Rule
from pipeline.io import read_csv, write_csv
from pipeline.label import LABELED_COLUMNS
from pipeline.propose import (
    PROPOSAL_COLUMNS,
    count_terms,
    matched_by,
    neighbours,
    propose_terms,
    provenance,
    rule_regex,
    similar_morphemes,
    terms_of,
)
from tests.conftest import GOLD, label_data_folder


def pool(groups):
    """texts, morphemes, probabilities and covered flags from (count, morphemes, proba, covered) groups."""
    texts, morphemes, proba, covered = [], [], [], []
    for count, morph, p, cov in groups:
        for _ in range(count):
            texts.append(f"{morph} #{len(texts)} p={p} cov={cov}")
            morphemes.append(morph)
            proba.append(p)
            covered.append(cov)
    return texts, morphemes, proba, covered


# 도난 is over-represented among confident uncovered headlines; 송환 only appears in covered ones; 마약 is
# over-represented too but a crime rule matches it; 절도 has exactly 4 confident uncovered headlines;
# 오늘 is in half of the target headlines but rarer among them than in the pool.
GROUPS = [
    (12, "도난 차량", 0.95, False),
    (3, "도난 차량", 0.6, False),  # not confident: counts in n_all only
    (2, "도난 경보", 0.99, True),  # covered: n_covered, not a target
    (10, "송환 범인", 0.99, True),
    (8, "마약 투약 오늘", 0.9, False),
    (4, "절도 오늘", 0.9, False),
    (200, "경제 성장 오늘", 0.01, False),
    (100, "정부 발표", 0.02, False),
]


def by_term(proposals):
    return {p.term: p for p in proposals}


def test_over_represented_uncovered_term_is_proposed_with_its_counts():
    texts, morphemes, proba, covered = pool(GROUPS)
    found = by_term(propose_terms(texts, morphemes, proba, covered, min_count=5, confidence=0.8, top=50))
    theft = found["도난"]
    assert (theft.n_target, theft.n_all, theft.n_covered) == (12, 17, 2)
    assert theft.precision == pytest.approx(12 / 17) and theft.lift > 1
    assert "도난 차량" in found  # bigrams too
    assert "오늘" not in found  # common everywhere: no lift
    assert not {"경제", "정부", "발표"} & found.keys()  # never in a target headline


def test_term_only_in_covered_headlines_is_not_proposed():
    texts, morphemes, proba, covered = pool(GROUPS)
    found = by_term(propose_terms(texts, morphemes, proba, covered, min_count=1, confidence=0.8, top=50))
    assert "송환" not in found and "범인" not in found
    # the same headlines, uncovered, would be proposed: covering is what keeps them out
    uncovered = [False] * len(covered)
    assert "송환" in by_term(propose_terms(texts, morphemes, proba, uncovered, min_count=1, confidence=0.8, top=50))


def test_term_matched_by_a_target_rule_is_dropped():
    texts, morphemes, proba, covered = pool(GROUPS)
    known = rule_regex([Rule(name="crime_act", label="crime", patterns=("살인|마약",))])
    assert "마약" in by_term(propose_terms(texts, morphemes, proba, covered, min_count=5, top=50))
    found = by_term(propose_terms(texts, morphemes, proba, covered, min_count=5, top=50, known=known))
    assert not any("마약" in term for term in found)  # unigram and every bigram containing it
    assert "투약" in found  # the rest of those headlines still counts


def test_bigram_matched_when_written_without_its_space():
    known = re.compile("구속영장")
    assert matched_by(known, "구속 영장") and not matched_by(known, "구속 심사") and not matched_by(None, "구속")


def test_min_count_is_honoured():
    texts, morphemes, proba, covered = pool(GROUPS)
    assert "절도" not in by_term(propose_terms(texts, morphemes, proba, covered, min_count=5, top=50))
    assert by_term(propose_terms(texts, morphemes, proba, covered, min_count=4, top=50))["절도"].n_target == 4
    assert all(p.n_target >= 7 for p in propose_terms(texts, morphemes, proba, covered, min_count=7, top=50))


def test_confidence_threshold_decides_what_is_a_target():
    texts, morphemes, proba, covered = pool(GROUPS)
    strict = by_term(propose_terms(texts, morphemes, proba, covered, min_count=5, confidence=0.92, top=50))
    assert "마약" not in strict and strict["도난"].n_target == 12
    loose = by_term(propose_terms(texts, morphemes, proba, covered, min_count=5, confidence=0.5, top=50))
    assert loose["도난"].n_target == 15


def test_examples_are_confident_uncovered_headlines_most_confident_first():
    texts, morphemes, proba, covered = pool([(2, "도난 차량", 0.85, False), (1, "도난 차량", 0.97, False),
                                             (3, "도난 차량", 0.99, True), (2, "도난 차량", 0.4, False),
                                             (2, "도난 차량", 0.9, False), (50, "날씨 맑음", 0.01, False)])
    theft = by_term(propose_terms(texts, morphemes, proba, covered, min_count=5, top=10))["도난"]
    targets = {t for t, p, c in zip(texts, proba, covered, strict=True) if p >= 0.8 and not c}
    assert len(theft.examples) == 3 and set(theft.examples) <= targets
    shown = [proba[texts.index(t)] for t in theft.examples]
    assert shown == sorted(shown, reverse=True) and shown[0] == 0.97


def test_smoothing_keeps_a_rare_perfect_term_below_a_frequent_strong_one():
    texts, morphemes, proba, covered = pool([(5, "희귀어", 0.9, False), (40, "흔한말", 0.9, False),
                                             (4, "흔한말", 0.1, False), (500, "배경", 0.1, False)])
    ranked = [p.term for p in propose_terms(texts, morphemes, proba, covered, min_count=5, top=10)]
    found = by_term(propose_terms(texts, morphemes, proba, covered, min_count=5, top=10))
    assert found["희귀어"].precision > found["흔한말"].precision  # raw precision would rank it first
    assert ranked.index("흔한말") < ranked.index("희귀어")


def test_top_limits_and_no_targets_gives_nothing():
    texts, morphemes, proba, covered = pool(GROUPS)
    assert len(propose_terms(texts, morphemes, proba, covered, min_count=1, top=2)) == 2
    assert propose_terms(texts, morphemes, [0.1] * len(texts), covered, min_count=1) == []
    with pytest.raises(ValueError):
        propose_terms(texts, morphemes[:-1], proba, covered)


def test_terms_and_counts_count_each_headline_once():
    assert terms_of("구속 영장 구속") == {"구속", "영장", "구속 영장", "영장 구속"}
    counts = count_terms([terms_of("a b a"), terms_of("a"), terms_of("b")], [True, True, False])
    assert counts["a"] == 2 and counts["b"] == 1 and counts["a b"] == 1


Similar = namedtuple("Similar", "form tag sense_id id score")


class FakeKiwi:
    """Kiwi's most_similar_morphemes contract: ValueError for unknown or ambiguous bare forms."""

    table = {
        ("훔치", "VV"): [Similar("훔치", "VV", 0, 1, 0.99), Similar("강탈", "NNG", 0, 2, 0.7),
                        Similar("가", "JKS", 0, 3, 0.69), Similar("강탈", "NNG", 1, 4, 0.68),
                        Similar("빼앗", "VV-R", 0, 5, 0.67), Similar("마약", "NNG", 0, 6, 0.6),
                        Similar("슬쩍", "MAG", 0, 7, 0.5)],
    }

    def most_similar_morphemes(self, query, top_n=10):
        if isinstance(query, str):
            raise ValueError(f"Multiple morphemes found for the given form: {query}/VV, {query}/NNG")
        if query not in self.table:
            raise ValueError(f"No morpheme found for the given form: {query}")
        return self.table[query][:top_n]


def test_neighbours_are_nouns_and_verbs_with_pool_counts():
    found = neighbours(FakeKiwi(), ["훔치", "없는말"], {"강탈": 7, "마약": 30}, {"강탈": 2}, n=3,
                       known=re.compile("마약"))
    assert [(n.term, n.form, n.tag) for n in found] == [("훔치", "강탈", "NNG"), ("훔치", "빼앗", "VV-R"),
                                                        ("훔치", "마약", "NNG")]
    assert (found[0].n_all, found[0].n_target, found[0].matched) == (7, 2, False)
    assert (found[1].n_all, found[1].n_target) == (0, 0) and found[2].matched


def test_similar_morphemes_with_the_real_kiwi():
    from pipeline.models.tfidf import kiwi

    found = similar_morphemes(kiwi(), "훔치", 3)
    assert 0 < len(found) <= 3 and all(tag.startswith(("NN", "VV")) for _, tag, _ in found)
    assert similar_morphemes(kiwi(), "없는말xyz", 3) == []


def test_provenance_names_command_model_run_and_date():
    stamp = provenance("crime", "tfidf", Path("/m/tfidf"), {"mlflow_run_id": "abc123", "train_data_sha256": "f" * 64},
                       0.8, date(2026, 11, 29))
    assert stamp == "pipeline.propose label=crime model=tfidf run=abc123 data=ffffffffffff confidence=0.8 on 2026-11-29"
    assert "dir=/m/tfidf" in provenance("crime", "tfidf", Path("/m/tfidf"), {}, 0.8)


# --- the command on fixture data -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fixture_run(data_dir, tmp_path_factory):
    """A labeled fixture table, a data config pointing at tmp paths, and a tiny TF-IDF model."""
    from pipeline.config import TfidfConfig
    from pipeline.models.tfidf import TfidfModel

    tmp = tmp_path_factory.mktemp("propose")
    mp = pytest.MonkeyPatch()
    mp.setenv("HEADLINE_DATA_DIR", str(data_dir))  # for the subprocesses too
    labeling, _ = label_data_folder()
    labeled = tmp / "labeled.csv"
    write_csv(labeled, LABELED_COLUMNS, labeling.rows)
    data_yaml = tmp / "data.yaml"
    data_yaml.write_text(f"data_dir: {data_dir}\nlabeled_csv: {labeled}\nlabel_issues_csv: {tmp}/review/issues.csv\n",
                         encoding="utf-8")
    # rules that know only 살인: the model (trained on the full rules) still knows the rest of crime
    labels_yaml = tmp / "labels.yaml"
    labels_yaml.write_text("rules:\n  - name: crime_murder\n    label: crime\n    patterns: ['살인']\n", encoding="utf-8")
    rows = [r for r in labeling.rows if r["label"] in LABELS]
    model = TfidfModel(TfidfConfig(max_iter=500)).fit([r["title"] for r in rows], [r["label"] for r in rows], seed=1)
    model.save(tmp / "model")
    yield {"tmp": tmp, "data": data_yaml, "labels": labels_yaml, "model": tmp / "model"}
    mp.undo()


def propose_cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.propose", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_command_proposes_what_the_rules_miss_and_writes_the_review_table(fixture_run, monkeypatch, capsys):
    from pipeline import propose

    monkeypatch.setattr(sys, "argv", ["propose", "--label", "crime", "--model", str(fixture_run["model"]),
                                      "--data", str(fixture_run["data"]), "--labels", str(fixture_run["labels"]),
                                      "--min-count", "3", "--confidence", "0.5", "--neighbours", "2"])
    propose.main()
    out = capsys.readouterr().out
    rows = read_csv(fixture_run["tmp"] / "review" / "proposed_crime.csv", required=PROPOSAL_COLUMNS)
    terms = {r["term"] for r in rows}
    # crime templates the one-word rules miss (검거, 입건, 기소, ...) must surface; 살인 is a rule already
    assert terms & {"검거", "입건", "기소", "체포", "혐의", "보이스피싱", "음주", "편취"}, out
    assert not any("살인" in t for t in terms)
    assert all(r["provenance"].startswith("pipeline.propose label=crime model=tfidf dir=") for r in rows)
    gold_titles = {t for t, _ in GOLD}
    assert not any(e in gold_titles for r in rows for e in r["examples"].split(" | "))
    assert "neighbours (to check by hand)" in out and "provenance:" in out


def test_command_without_a_model_is_a_one_line_error(fixture_run):
    proc = propose_cli("--model", fixture_run["tmp"] / "no-such-model", "--data", fixture_run["data"])
    assert proc.returncode == 2 and proc.stderr.startswith("error: model directory not found")
    assert proc.stderr.count("\n") == 1


def test_command_without_a_labeled_table_says_to_label(tmp_path):
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text(f"labeled_csv: {tmp_path}/missing.csv\n", encoding="utf-8")
    proc = propose_cli("--data", data_yaml)
    assert proc.returncode == 2 and proc.stderr.startswith("error: no labeled data") and "make label" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_numbers_and_one_syllable_morphemes_are_not_terms():
    texts, morphemes, proba, covered = pool([(10, "40 대 흉기 난동", 0.9, False), (100, "날씨 맑음", 0.01, False)])
    found = by_term(propose_terms(texts, morphemes, proba, covered, min_count=5, top=50))
    assert {"흉기", "난동", "흉기 난동", "대 흉기"} <= found.keys()  # a real word makes a bigram worth showing
    assert not {"40", "대", "40 대"} & found.keys()


def test_rule_seeds_are_the_plain_words_of_the_patterns_not_their_vetoes():
    from pipeline.propose import rule_seeds

    rules = [Rule(name="crime_act", label="crime", patterns=("살인(?!적)|사기(?!업|를 ?(높|올))|불법 ?촬영", "보석 ?(청구|신청)|.{0,9}구형"))]
    assert rule_seeds(rules) == ["살인", "사기", "불법촬영", "보석"]
