"""Champion by evidence: registry tags, promote, compare (on a temporary store with two kinds)."""

import pytest

from pipeline import registry
from pipeline.compare import RUN_COLUMNS, rows, slice_rows
from pipeline.gold import decode, paired_difference
from pipeline.models.base import read_meta
from pipeline.promote import promote, speed_key
from pipeline.table import format_table


def best_kind(store):
    """The kind promote must crown: the better one if the paired bootstrap on the report part says so, else
    (a tie within noise, as the tiny fixture models usually are) the faster one, as tagged."""
    tfidf, kobert = sorted(registry.registered_versions(), key=lambda v: v["tags"]["model_kind"] != "tfidf")
    diff = paired_difference(decode(tfidf["tags"]["report/truth"]), decode(tfidf["tags"]["report/answers"]),
                             decode(kobert["tags"]["report/answers"]))
    if diff.lo > 0 or diff.hi < 0:
        return "kobert" if diff.lo > 0 else "tfidf"
    return max((tfidf, kobert), key=speed_key)["tags"]["model_kind"]


def test_versions_carry_gold_metrics_as_tags(store):
    versions = registry.registered_versions()
    assert {v["name"] for v in versions} == {"headline-topic"}  # one registered model; the kind is a tag
    assert sorted(v["tags"]["model_kind"] for v in versions) == ["kobert", "tfidf"]
    for v in versions:
        kind = v["tags"]["model_kind"]
        metrics = store["results"][kind].metrics
        assert float(v["tags"]["report/macro_f1"]) == pytest.approx(metrics["report/macro_f1"])
        assert int(v["tags"]["model_bytes"]) > 0
        # the report part's answers, one letter per in-scope item, so promote can pair versions
        assert len(v["tags"]["report/answers"]) == len(v["tags"]["report/truth"]) == metrics["report/n"]


def test_promote_crowns_the_best_and_installs_its_export(store):
    message = promote(models_dir=store["models_dir"])
    assert "promoted" in message
    assert "file dev " in message and "dev_kept" not in message  # one row per gold slice, none per figure
    champion = next(v for v in registry.registered_versions() if v["champion"])
    assert champion["tags"]["model_kind"] == best_kind(store)
    assert sum(v["champion"] for v in registry.registered_versions()) == 1
    current = store["models_dir"] / "current"
    assert current.resolve() == (store["models_dir"] / "champion").resolve()
    assert read_meta(current)["kind"] == best_kind(store)
    assert "already the champion" in promote(models_dir=store["models_dir"])


def test_compare_lists_latest_run_of_each_kind(store):
    runs = registry.latest_runs("headline-topics")
    assert {r["kind"] for r in runs} == {"tfidf", "kobert"}
    table = format_table(RUN_COLUMNS, rows(runs, best_kind(store)))
    assert "*" + best_kind(store) in table and "local:kobert-local-" in table
    for result in store["results"].values():
        assert f"{result.metrics['report/macro_f1']:.4f}" in table
    # and per gold file and source, with intervals
    columns, per_slice = slice_rows(runs, best_kind(store))
    assert set(columns) == {"kind", "file dev", "file outlets_2026-02", "source fixture", "source outlet-a",
                            "source outlet-b"}  # slices only: no `file dev_kept` (a figure of a slice)
    tfidf = next(row for row in per_slice if row[0].endswith("tfidf"))
    m = store["results"]["tfidf"].metrics
    assert tfidf[columns.index("source outlet-a")].startswith(f"{m['gold_source/outlet-a_macro_f1']:.3f} [")


def test_versions_carry_each_report_items_gold_source(store):
    from pipeline.gold import decode_sources

    for v in registry.registered_versions():
        sources = decode_sources(v["tags"])
        assert len(sources) == len(v["tags"]["report/truth"])
        assert set(sources) == {"fixture", "outlet-a", "outlet-b"} and sources.count("fixture") == 24


def test_runs_log_charts_for_the_artifact_view(store):
    import mlflow

    client = mlflow.MlflowClient()
    run_id = store["results"]["tfidf"].model.info["mlflow_run_id"]
    names = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/report_confusion_matrix.png", "plots/report_confusion_matrix_normalised.png",
            "plots/report_reliability.png"} <= names
