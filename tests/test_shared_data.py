"""Checks on the real shared data (../shared/data or $HEADLINE_DATA_DIR); skipped when it is absent."""

import pytest

from pipeline import TOPICS
from pipeline.config import CONFIG_DIR, DataConfig, TfidfConfig, TrainConfig, load_config
from pipeline.ingest import ingest
from pipeline.models.tfidf import TfidfModel
from pipeline.predict import predict_titles
from pipeline.text import normalize_title
from pipeline.train import train
from tests.conftest import SHARED_DATA, label_data_folder

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HEADLINE_DATA_DIR", str(SHARED_DATA))
    labeling, gold = label_data_folder()
    rows = ingest(load_config(DataConfig))
    yield {"rows": rows, "labeled": labeling.rows, "removed": labeling.n_gold, "gold": gold, "stats": labeling.stats}
    mp.undo()


def test_ranknews_page_gives_its_twenty_rows(real):
    page = [r for r in real["rows"] if r["source_file"] == "ranknews_2024-07-31.txt"]
    assert len(page) == 20 and all(r["date"] == "2024-07-31" for r in page)


def test_every_gold_title_is_kept_out_of_training(real):
    keys = {r["key"] for r in real["labeled"]}
    assert real["removed"] == len(real["gold"])
    assert not keys & {normalize_title(g["title"]).key for g in real["gold"]}


def test_gold_parts_are_disjoint_and_both_hold_crime(real):
    from pipeline.gold import REPORT, TUNE, split_gold

    parts = split_gold(real["gold"], 0.5)
    keys = {part: {normalize_title(g["title"]).key for g in rows} for part, rows in parts.items()}
    assert not keys[TUNE] & keys[REPORT] and len(parts[TUNE]) + len(parts[REPORT]) == len(real["gold"])
    for part in (TUNE, REPORT):
        assert 0.4 < len(parts[part]) / len(real["gold"]) < 0.6
        assert sum(g["label"] == "crime" for g in parts[part]) >= 15


def test_crime_functions_are_precise_on_gold(real):
    stats = {s.name: s for s in real["stats"]}
    assert stats["crime_act"].gold_precision >= 0.85 and stats["crime_justice"].gold_precision >= 0.85


def test_every_topic_has_training_labels(real):
    counts = {t: sum(r["label"] == t for r in real["labeled"]) for t in TOPICS}
    assert min(counts.values()) >= 500, counts


def test_tfidf_on_real_data_beats_floor_on_gold(real):
    model = TfidfModel(load_config(TfidfConfig, CONFIG_DIR / "tfidf.yaml"))
    cfg = load_config(TrainConfig, CONFIG_DIR / "train.yaml", {"audit_folds": 0})
    result = train(model, real["labeled"], real["gold"], cfg)
    # floors under the report part's bootstrap interval: catch a broken labeler or model, not noise
    assert result.metrics["gold_report_macro_f1"] >= 0.88
    assert result.metrics["gold_report_f1_crime"] >= 0.80
    assert predict_titles(model, ["[속보] 경찰, '은평 일본도 살인' 가해자 구속영장 신청"])[0]["label"] == "crime"
