"""Checks on the real shared data (../shared/data or $HEADLINE_DATA_DIR); skipped when it is absent."""

import pytest

from pipeline import TOPICS
from pipeline.config import CONFIG_DIR, DataConfig, TfidfConfig, TrainConfig, load_config
from pipeline.ingest import ingest
from pipeline.models.tfidf import TfidfModel
from pipeline.predict import predict_titles
from pipeline.text import normalize_title
from pipeline.train import train
from tests.conftest import SHARED_DATA, label_data_folder, tune_rows

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HEADLINE_DATA_DIR", str(SHARED_DATA))
    labeling, gold = label_data_folder()
    rows = ingest(load_config(DataConfig))
    yield {"rows": rows, "labeled": labeling.rows, "removed": labeling.n_gold, "gold": gold, "stats": labeling.stats,
           "tune": tune_rows(gold)}
    mp.undo()


def test_ranknews_page_gives_its_twenty_rows(real):
    page = [r for r in real["rows"] if r["source_file"] == "ranknews_2024-07-31.txt"]
    assert len(page) == 20 and all(r["date"] == "2024-07-31" for r in page)


def test_every_gold_and_tune_title_is_kept_out_of_training(real):
    keys = {r["key"] for r in real["labeled"]}
    assert {g["file"] for g in real["gold"]} == {"dev", "outlets_2026-02"}
    assert not keys & {normalize_title(g["title"]).key for g in real["gold"]}
    assert not keys & {t["key"] for t in real["tune"]}
    assert len(real["tune"]) > 1000 and sum(t["label"] == "crime" for t in real["tune"]) >= 40


def test_every_source_is_ingested_with_its_name(real):
    sources = {r["source"] for r in real["rows"]}
    assert {"ynat", "naver_sections_2026-06-05", "chosun_society_2024-05_2026-06", "economic_dailies_2026-02",
            "naver_sections_2025-04-16", "page"} == sources
    # the dailies' multi-valued categories arrive as given; the labeler splits them
    assert any("|" in r["section"] for r in real["rows"] if r["source"] == "economic_dailies_2026-02")


def test_no_topic_comes_from_one_source_alone(real):
    from collections import Counter

    for topic in TOPICS:
        per_source = Counter(r["source"] for r in real["labeled"] if r["label"] == topic)
        assert len([s for s, n in per_source.items() if n >= 500]) >= 2, (topic, per_source)


def test_label_report_shows_counts_per_source_and_label(real):
    from pipeline.label import source_table

    table = source_table(real["labeled"]).splitlines()
    assert table[0].split()[:6] == ["source", "politics", "crime", "sports", "business", "other"]
    chosun = next(line for line in table if line.startswith("chosun_society"))
    assert int(chosun.split()[-1]) == sum(r["source"].startswith("chosun") for r in real["labeled"])


def test_crime_functions_are_precise_on_the_annotations(real):
    stats = {s.name: s for s in real["stats"]}
    assert stats["crime_act"].tune_precision >= 0.8 and stats["crime_justice"].tune_precision >= 0.85


def test_every_topic_has_training_labels(real):
    counts = {t: sum(r["label"] == t for r in real["labeled"]) for t in TOPICS}
    assert min(counts.values()) >= 500, counts


def test_tfidf_on_real_data_beats_floor_on_gold(real):
    model = TfidfModel(load_config(TfidfConfig, CONFIG_DIR / "tfidf.yaml"))
    cfg = load_config(TrainConfig, CONFIG_DIR / "train.yaml", {"audit_folds": 0})
    result = train(model, real["labeled"], real["gold"], cfg, real["tune"])
    # floors under the report part's bootstrap interval: catch a broken labeler or model, not noise
    assert result.metrics["report/macro_f1"] >= 0.88
    assert result.metrics["report/f1_crime"] >= 0.80
    assert predict_titles(model, ["[속보] 경찰, '은평 일본도 살인' 가해자 구속영장 신청"])[0]["label"] == "crime"
