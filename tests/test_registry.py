"""Champion by evidence: registry tags, promote, compare (on a temporary store with two kinds)."""

import pytest

from pipeline import tracking
from pipeline.compare import format_table, rows
from pipeline.models import read_meta
from pipeline.promote import promote, propose, rank_key


@pytest.fixture(scope="module")
def store(two_kind_store):
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{two_kind_store['tmp']}/mlflow.db")
    yield two_kind_store
    mp.undo()


def best_kind(store):
    """The kind promote must crown: best gold macro-F1 at 4 decimals, ties to the faster model. The tiny
    fixture models can tie on gold, and then speed decides, so the expectation reads the same tags."""
    return max(tracking.registered_versions(), key=rank_key)["tags"]["model_kind"]


def test_versions_carry_gold_metrics_as_tags(store):
    versions = tracking.registered_versions()
    assert {v["name"] for v in versions} == {"headline-topic-tfidf", "headline-topic-kobert"}
    for v in versions:
        kind = v["tags"]["model_kind"]
        assert float(v["tags"]["gold_macro_f1"]) == pytest.approx(store["results"][kind].metrics["gold_macro_f1"])
        assert int(v["tags"]["model_bytes"]) > 0


def test_promote_crowns_the_best_and_installs_its_export(store):
    message = promote(models_dir=store["models_dir"])
    assert "promoted" in message
    champion = next(v for v in tracking.registered_versions() if v["champion"])
    assert champion["tags"]["model_kind"] == best_kind(store)
    assert sum(v["champion"] for v in tracking.registered_versions()) == 1
    current = store["models_dir"] / "current"
    assert current.resolve() == (store["models_dir"] / "champion").resolve()
    assert read_meta(current)["kind"] == best_kind(store)
    assert "already the champion" in promote(models_dir=store["models_dir"])


def test_worse_candidate_is_not_promoted_unless_forced():
    better = {"name": "a", "version": "1", "champion": True, "tags": {"gold_macro_f1": "0.90"}}
    worse = {"name": "b", "version": "1", "champion": False, "tags": {"gold_macro_f1": "0.80"}}
    assert propose([better, worse]) == (better, better)
    faster = {"name": "c", "version": "1", "champion": False,
              "tags": {"gold_macro_f1": "0.90001", "gold_headlines_per_second": "5000"}}
    assert rank_key(faster) > rank_key(better)  # a noise-level tie goes to the faster model


def test_compare_lists_latest_run_of_each_kind(store):
    runs = tracking.latest_runs("headline-topics")
    assert {r["kind"] for r in runs} == {"tfidf", "kobert"}
    table = format_table(rows(runs, best_kind(store)))
    assert "*" + best_kind(store) in table and "local:kobert-local-" in table
    for result in store["results"].values():
        assert f"{result.metrics['gold_macro_f1']:.4f}" in table


def test_runs_log_charts_for_the_artifact_view(store):
    import mlflow

    client = mlflow.MlflowClient()
    run_id = store["results"]["tfidf"].model.info["mlflow_run_id"]
    names = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/gold_f1_per_class.png", "plots/gold_confusion_matrix_normalised.png",
            "plots/gold_reliability.png"} <= names
