"""Model card: built from the runs of a temporary store (two_kind_store) and checked against their metrics."""

from datetime import UTC, datetime

import pytest

from pipeline import TOPICS, registry
from pipeline.card import build_card, write_card


def section(card: str, heading: str) -> str:
    """The text under `## heading` up to the next heading."""
    start = card.index(f"## {heading}\n")
    end = card.find("\n## ", start + 1)
    return card[start:end if end > 0 else None]


def table(card: str, heading: str) -> dict[str, dict[str, str]]:
    """The markdown table of a section: {first cell: {column: cell}}."""
    lines = [line for line in section(card, heading).splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    columns, rows = cells[0], cells[2:]
    return {row[0]: dict(zip(columns, row, strict=True)) for row in rows}


def f3(metrics: dict, name: str) -> str:
    return f"{metrics[name]:.3f} [{metrics[name + '_lo']:.3f}, {metrics[name + '_hi']:.3f}]"


def test_card_figures_are_the_runs_metrics(store, tmp_path):
    """Every figure the card shows for a run is that run's logged metric, the champion is marked, tuning is
    labelled, and without bench results the card says how to get them."""
    out = tmp_path / "MODEL_CARD.md"
    versions = registry.registered_versions()
    tfidf_version = next(v for v in versions if v["tags"]["model_kind"] == "tfidf")
    champion = {**tfidf_version, "champion": True}  # passed in: the shared store's alias is promote's to move
    card = build_card(registry.latest_runs("headline-topics"), champion, None)
    runs = {r["kind"]: r for r in registry.latest_runs("headline-topics")}
    assert set(runs) == {"tfidf", "kobert"}
    names = {"tfidf": "**tfidf** (champion)", "kobert": "kobert"}

    report = table(card, "All gold (report only)")
    abstain = table(card, "Abstaining on all gold")
    tune = table(card, "Tune part of the annotations (tuning)")
    slices = table(card, "Per gold file and source (report only)")
    listed = table(card, "Runs")
    assert set(report) == set(names.values())
    for kind, name in names.items():
        m = store["results"][kind].metrics
        assert runs[kind]["metrics"]["report/macro_f1"] == pytest.approx(m["report/macro_f1"])
        assert report[name]["macro-F1 [95% CI]"] == f3(m, "report/macro_f1")
        assert report[name]["in-scope items"] == f"{m['report/n']:,.0f}"
        for t in TOPICS:
            assert report[name][f"F1 {t}"] == f"{m[f'report/f1_{t}']:.3f}"
        assert abstain[name]["coverage of in-scope [95% CI]"] == (
            f"{m['report/coverage']:.1%} [{m['report/coverage_lo']:.1%}, {m['report/coverage_hi']:.1%}]")
        assert abstain[name]["gold `other` answered `other`"] == f"{m['report/other_abstained']:.1%}"
        assert abstain[name]["accuracy on kept"] == f"{m['report/kept_accuracy']:.3f}"
        assert tune[name]["in-scope items"] == f"{m['tune/n']:,.0f}"
        assert tune[name]["macro-F1 (tuning)"] == f"{m['tune/macro_f1']:.3f}"
        assert tune[name]["coverage (tuning)"] == f"{m['tune/coverage']:.1%}"
        assert tune[name]["abstain threshold"] == f"{m['calibration/abstain_threshold']:.3f}"
        assert listed[name]["train s"] == f"{m['time/train_seconds']:.1f}"
        assert listed[name]["started"] == datetime.fromtimestamp(
            runs[kind]["start_time"] / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        assert "`make train`" in listed[name]["reproduce"]
        # per gold file and source, with the fixture's two files and three sources
        assert slices["file `dev`"][name] == f3(m, "gold_file/dev_macro_f1")
        assert slices["file `outlets_2026-02`"][name] == f3(m, "gold_file/outlets_2026-02_macro_f1")
        assert slices["source `outlet-a`"][name] == f3(m, "gold_source/outlet-a_macro_f1")
    assert set(slices) == {"file `dev`", "file `outlets_2026-02`", "source `fixture`", "source `outlet-a`",
                           "source `outlet-b`"}
    assert f"version {tfidf_version['version']}" in section(card, "Champion")
    assert "Not measured yet: run `make bench`" in section(card, "Prediction speed")

    # main's path: the store's own champion (whichever it is), written to a file
    written = write_card(out, "headline-topics", tmp_path / "no-bench.json")
    assert out.read_text(encoding="utf-8") == written and "## All gold (report only)" in written


def test_card_shows_bench_results_and_says_when_there_are_no_runs():
    bench = {"measured_at": "2026-12-01T10:00:00+00:00", "cores": 2, "lines": 100000, "in_process_headlines": 5000,
             "command": "make bench",
             "models": [{"model": "tfidf", "kind": "tfidf", "mlflow_run_id": "abc123def4567890", "cold_seconds": 0.4321,
                         "input_per_second": 15703.2, "peak_rss_mib": 225.4,
                         "in_process": {"in-process /s": 10853.0, "scikit-learn in-process /s": 5426.0}}]}
    card = build_card([], None, bench)
    assert "No runs yet: run `make train && make card`" in card
    speed = table(card, "Prediction speed")
    assert speed["tfidf"]["one headline, cold (median of 5)"] == "0.43 s"
    assert speed["tfidf"]["`--input` 100,000 lines"] == "15,703/s"
    assert speed["tfidf"]["in process"] == "10,853/s"
    assert speed["tfidf"]["training-time path"] == "scikit-learn 5,426/s (in process is 2.0×)"
    assert speed["tfidf"]["MLflow run"] == "`abc123def456`"
    assert "2026-12-01T10:00:00+00:00" in section(card, "Prediction speed")
