"""End to end on fixture data: ingest -> label -> train -> MLflow run -> export -> predict CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import LABELS, REPO_ROOT, TOPICS
from pipeline.cli import UserError
from pipeline.config import CONFIG_DIR, TfidfConfig, TrainConfig, load_config
from pipeline.models import load_model
from pipeline.models.tfidf import TfidfModel
from pipeline.train import export, run_training
from tests.conftest import ANNOTATIONS, GOLD, OUTLETS_GOLD, label_data_folder, offline_env, tune_rows

CRIME_TITLE = "[속보] 경찰, '은평 일본도 살인' 가해자 구속영장 신청"


@pytest.fixture(scope="module")
def run_env(data_dir, tmp_path_factory):
    """Train once on the fixture data into a temporary MLflow store and models folder."""
    tmp = tmp_path_factory.mktemp("run")
    mp = offline_env(data_dir, tmp)
    labeling, gold = label_data_folder()
    labeled, removed = labeling.rows, labeling.n_gold
    tune = tune_rows(gold)
    cfg = load_config(TrainConfig, overrides={"models_dir": str(tmp / "models"), "experiment": "test",
                                              "audit_folds": 2})
    model = TfidfModel(load_config(TfidfConfig, CONFIG_DIR / "tfidf.yaml"))
    result, model_dir = run_training(model, labeled, gold, cfg, tune, configs={"train": {"seed": cfg.seed},
                                                                               "model": {"C": model.config.C}})
    yield {"tmp": tmp, "result": result, "model_dir": model_dir, "labeled": labeled, "removed": removed, "cfg": cfg,
           "gold": gold, "tune": tune}
    mp.undo()


def test_gold_and_tune_titles_never_in_training_table(run_env):
    from pipeline.text import normalize_title

    keys = {r["key"] for r in run_env["labeled"]}
    assert not keys & {normalize_title(t).key for t, *_ in [*GOLD, *OUTLETS_GOLD]}
    assert not keys & {t["key"] for t in run_env["tune"]}
    # removed: the YNAT copy of a gold title, and every tune-part title (annotated titles join the table first)
    assert run_env["removed"] == 1 + len(run_env["tune"])
    assert all("법제사법위원회" not in r["title"] for r in run_env["labeled"])
    # the tune part never trains; the fit part does, with its human label over the rules'
    fit = {normalize_title(t).key for t, _, _ in ANNOTATIONS} - {t["key"] for t in run_env["tune"]}
    annotated = [r for r in run_env["labeled"] if r["rule"] == "annotation"]
    assert annotated and {r["key"] for r in annotated} <= fit


def test_metrics_on_val_tune_and_gold_have_shared_names(run_env):
    metrics = run_env["result"].metrics
    for prefix in ("val/", "tune/", "report/", "gold_file/dev_", "gold_file/outlets_2026-02_",
                   "gold_source/outlet-a_", "gold_source/fixture_"):
        assert {f"{prefix}macro_f1", f"{prefix}accuracy", *(f"{prefix}f1_{t}" for t in TOPICS)} <= set(metrics)
    assert metrics["val/macro_f1"] > 0.8  # templates are easy; a broken model scores ~0.25
    # all gold, both files, is reported: 6 + 1 `other` items, 24 + 5 in-scope
    assert metrics["report/other_n"] == 7 and metrics["report/n"] == 29
    assert metrics["gold_file/dev_n"] == 24 and metrics["gold_file/outlets_2026-02_n"] == 5
    assert metrics["gold_source/outlet-a_n"] + metrics["gold_source/outlet-b_n"] == 5
    # every gold slice carries a bootstrap interval around its point estimate; the tune set does not
    for prefix in ("report/", "gold_file/dev_", "gold_source/outlet-b_"):
        assert metrics[f"{prefix}macro_f1_lo"] <= metrics[f"{prefix}macro_f1"] <= metrics[f"{prefix}macro_f1_hi"]
    assert "tune/macro_f1_lo" not in metrics


def test_every_metric_sits_in_a_chart_section(run_env):
    """MLflow 3.17's chart view makes a section of each prefix before the last `/`: no metric is left outside
    one, and the sections are the few a person scans (every gold file in one, not a section per file)."""
    metrics = run_env["result"].metrics
    sections = {name.rpartition("/")[0] for name in metrics}
    assert all("/" in name for name in metrics)
    assert {"report", "tune", "val", "gold_file", "gold_source", "calibration", "audit", "time", "data"} == sections


def test_annotations_never_enter_a_report_metric(run_env):
    from pipeline.text import normalize_title

    evaluations = run_env["result"].evaluations
    gold_keys = {normalize_title(t).key for t, *_ in [*GOLD, *OUTLETS_GOLD]}
    tune_keys = {t["key"] for t in run_env["tune"]}
    for name, evaluation in evaluations.items():
        keys = {normalize_title(t).key for t in evaluation.scope_titles}
        if name.startswith(("report", "gold_")):
            assert keys <= gold_keys and not keys & (tune_keys - gold_keys), name
        elif name == "tune":
            assert keys <= tune_keys and not keys & gold_keys


def test_audit_ranks_suspects_and_counts_them(run_env):
    result = run_env["result"]
    issues = result.label_issues
    assert result.metrics["audit/issues_total"] == len(issues)
    assert sum(result.metrics[f"audit/issues_{t}"] for t in LABELS) == len(issues)  # `other` is learned too
    assert [i["rank"] for i in issues] == list(range(1, len(issues) + 1))
    assert all(i["label_p"] <= i["suggested_p"] for i in issues)


def test_export_is_self_describing(run_env):
    meta = json.loads((run_env["model_dir"] / "model.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "tfidf" and sorted(meta["labels"]) == sorted(LABELS)  # other is learned
    assert meta["calibration"]["method"] in ("temperature", "isotonic", "platt") and 0 <= meta["abstain_threshold"] < 1
    assert meta["config"]["C"] == load_config(TfidfConfig, CONFIG_DIR / "tfidf.yaml").C
    assert "report/macro_f1" in meta["metrics"] and len(meta["info"]["train_data_sha256"]) == 64
    assert set(meta["files"]) == {"tfidf.npz"} and len(meta["files"]["tfidf.npz"]) == 64
    # the figures `predict --summary` holds a batch against, on all gold (both files: 30 + 6 titles)
    assert meta["info"]["batch_reference"]["abstain"]["items"] == 36
    # the first model becomes the default as a copy (models/champion): retraining does not move the default
    current = run_env["model_dir"].parent / "current"
    assert current.readlink() == Path("champion") and (current / "tfidf.npz").read_bytes() == \
        (run_env["model_dir"] / "tfidf.npz").read_bytes()


def test_mlflow_run_logged_and_model_registered(run_env):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{run_env['tmp']}/mlflow.db")
    run = client.get_run(run_env["result"].model.info["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["report/macro_f1"] == pytest.approx(run_env["result"].metrics["report/macro_f1"])
    assert any(name.startswith("labels/") for name in run.data.metrics)  # rows each labeling rule labeled
    assert run.data.tags["train_data_sha256"] == run_env["result"].data_info["train_data_sha256"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/report_confusion_matrix.png", "plots/tune_confusion_matrix.png",
            "plots/gold_file_outlets_2026-02_confusion_matrix.png"} <= artifacts
    versions = client.search_model_versions("name='headline-topic'")
    assert versions and versions[0].run_id == run.info.run_id and versions[0].tags["model_kind"] == "tfidf"
    # the run spans the training (it is opened before fit), and names what it learned from and was scored on
    assert run.info.end_time - run.info.start_time >= 1000 * run_env["result"].metrics["time/train_seconds"]
    assert client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    inputs = {(d.dataset.name, d.tags[0].value) for d in run.inputs.dataset_inputs}
    assert inputs == {("labeled", "training"), ("tune", "tuning"), ("report", "evaluation"),
                      ("gold_file/dev", "evaluation"), ("gold_file/outlets_2026-02", "evaluation")}
    labeled = next(d.dataset for d in run.inputs.dataset_inputs if d.dataset.name == "labeled")
    assert json.loads(labeled.profile)["num_rows"] == len(run_env["result"].rows)


def test_model_round_trip(run_env):
    model = load_model(run_env["model_dir"])
    proba = model.predict_proba(["프로야구 LG, 두산에 역전승", "코스피 2800선 회복"])
    assert proba.shape == (2, len(LABELS)) and np.allclose(proba.sum(axis=1), 1)
    assert [model.labels[i] for i in proba.argmax(axis=1)] == ["sports", "business"]


def predict_cli(*args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline.predict", *args], cwd=REPO_ROOT,
                          input=stdin, capture_output=True, text=True, timeout=120, env=env or os.environ)


def test_predict_cli_answers_crime_without_heavy_imports(run_env):
    proc = predict_cli("--model", str(run_env["model_dir"]), "--json", CRIME_TITLE)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["label"] == "crime" and set(result["scores"]) == set(TOPICS)
    assert result["confidence"] == max(result["scores"].values())
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "transformers", "mlflow", "sklearn", "scipy"}


def test_predict_cli_plain_output(run_env):
    proc = predict_cli("--model", str(run_env["model_dir"]), "프로야구 LG, 두산에 역전승")
    label, confidence = proc.stdout.split()
    assert label == "sports" and 0.25 < float(confidence) <= 1


def test_predict_cli_answers_several_titles_in_order(run_env):
    titles = ["코스피 2800선 회복", "프로야구 LG, 두산에 역전승", CRIME_TITLE]
    proc = predict_cli("--model", str(run_env["model_dir"]), *titles)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["business", "sports", "crime"]
    proc = predict_cli("--model", str(run_env["model_dir"]), "--json", *titles)
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["title"] for o in out] == titles and [o["label"] for o in out] == ["business", "sports", "crime"]


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_predict_cli_bad_title_among_good_ones(run_env, json_flag):
    titles = ["코스피 2800선 회복", "   ", "프로야구 LG, 두산에 역전승"]
    proc = subprocess.run([sys.executable, "-m", "pipeline.predict", "--model", str(run_env["model_dir"]),
                           *json_flag, *titles], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert len(lines) == 3  # the good ones answered, the bad one's error in its place
    if json_flag:
        out = [json.loads(line) for line in lines]
        assert [o["label"] for o in out] == ["business", None, "sports"] and "empty" in out[1]["error"]
    else:
        assert lines[0].startswith("business ") and lines[1] == "error: empty title"
        assert lines[2].startswith("sports ")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: 1 of 3 titles could not be classified (title 2: empty title)")


def test_predict_input_keeps_every_line_in_order(run_env):
    lines = ["코스피 2800선 회복", "", "경찰, 절도 피의자 체포", "   ", "just english", "프로야구 LG 역전승"]
    proc = predict_cli("--model", str(run_env["model_dir"]), "--input", "-", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["title"] for o in out] == lines
    assert [o["label"] for o in out] == ["business", None, "crime", None, None, "sports"]
    assert "empty" in out[1]["error"] and "Korean" in out[4]["error"]


def test_predict_abstains_on_other_unless_told_not_to(run_env):
    title = "부산 내일 비 소식…기온 뚝 떨어져"
    out = json.loads(predict_cli("--model", str(run_env["model_dir"]), "--json", title).stdout)
    forced = json.loads(predict_cli("--model", str(run_env["model_dir"]), "--json", "--no-abstain", title).stdout)
    assert out["label"] == "other" and forced["label"] in TOPICS
    assert set(out["scores"]) == set(forced["scores"]) == set(TOPICS)
    assert out["confidence"] == pytest.approx(1 - max(out["scores"].values()), abs=1e-3)


def test_abstain_and_calibration_metrics_logged(run_env):
    metrics = run_env["result"].metrics
    for name in ("report/other_abstained", "report/coverage", "report/kept_accuracy",
                 "report/coverage_lo", "val/ece", "val/ece_raw", "calibration/ece_none", "calibration/abstain_threshold"):
        assert name in metrics
    assert run_env["result"].model.info["abstain_threshold_on"] == "tune"
    # the threshold keeps the configured share of the tune part's in-scope items
    assert metrics["tune/coverage"] >= run_env["cfg"].abstain_coverage


@pytest.mark.parametrize("args, message", [
    (["   "], "error: empty title"),
    (["--model", "/no/such/model", "경찰 체포"], "error: model directory not found"),
    (["--input", "/no/such/file.txt"], "error: cannot read input file"),
    ([], "error: give one or more headlines, or --input PATH"),
    (["경찰 체포", "--input", "-"], "error: give headlines or --input PATH, not both"),
    (["--model", "models/tfidf", "--config", "configs/train.yaml", "경찰 체포"], "error: give --model DIR or --config"),
])
def test_predict_cli_errors_are_one_line(run_env, args, message):
    proc = subprocess.run([sys.executable, "-m", "pipeline.predict", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith(message) and proc.stderr.count("\n") == 1


def test_predict_without_any_model_says_how_to_make_one(tmp_path):
    from pipeline import predict

    config = tmp_path / "train.yaml"
    config.write_text(f"models_dir: {tmp_path / 'models'}\n", encoding="utf-8")
    with pytest.raises(UserError, match="make train"):
        predict.resolve_model_dir(None, config)


def test_corrupt_model_dir_is_a_clear_error(tmp_path):
    (tmp_path / "model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="corrupt"):
        load_model(tmp_path)


def test_failed_run_keeps_previous_model(run_env, monkeypatch):
    from pipeline import tracking

    before = (run_env["model_dir"] / "model.json").read_bytes()

    def boom(*_args, **_kwargs):
        raise RuntimeError("tracking store down")

    monkeypatch.setattr(tracking, "log_result", boom)
    with pytest.raises(RuntimeError):
        export(run_env["result"], run_env["cfg"], run_env["result"].model.info["mlflow_run_id"])
    assert (run_env["model_dir"] / "model.json").read_bytes() == before
    assert len(list((run_env["model_dir"].parent / ".versions").glob("tfidf-*"))) <= 2  # current and previous


class Diverging(TfidfModel):
    def fit(self, *args, **kwargs):
        raise RuntimeError("diverged")


def test_failed_training_marks_its_run_failed_and_keeps_the_model(run_env):
    import mlflow

    before = (run_env["model_dir"] / "model.json").read_bytes()
    with pytest.raises(RuntimeError, match="diverged"):
        run_training(Diverging(TfidfConfig()), run_env["labeled"], run_env["gold"], run_env["cfg"])
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{run_env['tmp']}/mlflow.db")
    experiment = client.get_experiment_by_name("test").experiment_id
    newest = client.search_runs([experiment], order_by=["attributes.start_time DESC"], max_results=1)[0]
    assert newest.info.status == "FAILED" and newest.data.tags["model_kind"] == "tfidf"
    assert (run_env["model_dir"] / "model.json").read_bytes() == before


def test_source_balance_gives_each_source_of_a_label_an_equal_say_and_keeps_the_label_total():
    from pipeline.train import source_balance

    rows = ([{"source": "ynat", "label": "sports"}] * 90 + [{"source": "dailies", "label": "sports"}] * 10
            + [{"source": "ynat", "label": "crime"}] * 5)
    w = source_balance(rows, 1.0)
    assert sum(w[:90]) == pytest.approx(50) and sum(w[90:100]) == pytest.approx(50)  # equal say, total kept
    assert w[100:] == pytest.approx([1.0] * 5)  # a label of one source is left as it is
    half = source_balance(rows, 0.5)
    assert sum(half[:100]) == pytest.approx(100) and 50 < sum(half[:90]) < 90  # part of the way
    assert source_balance(rows, 0.0) == pytest.approx([1.0] * len(rows))
