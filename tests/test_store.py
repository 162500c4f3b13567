"""pipeline.store owns the models directory (#22): a models_dir set in a train config is where train exports,
promote crowns and predict answers from, and the champion is installed one way."""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import REPO_ROOT, names, store
from pipeline.cli import UserError
from pipeline.io import sha256_file, write_csv
from pipeline.label import LABELED_COLUMNS
from tests.conftest import label_data_folder, offline_env

TITLE = "[속보] 경찰, '은평 일본도 살인' 가해자 구속영장 신청"


def tree(path: Path) -> dict[str, str]:
    """Every entry under `path` (links by target, files by hash): to see that nothing was written there."""
    if not path.exists():
        return {}
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            entry = Path(root) / name
            rel = str(entry.relative_to(path))
            out[rel] = (f"-> {os.readlink(entry)}" if entry.is_symlink()
                        else sha256_file(entry) if entry.is_file() else "dir")
    return out


def files(model_dir: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(model_dir.iterdir())}


def cli(module: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def elsewhere(data_dir, tmp_path_factory):
    """A train config whose models_dir is outside the repo, and `python -m pipeline.train --config` run on it
    (fixture data, an MLflow store of its own); repo/models is recorded before anything runs."""
    tmp = tmp_path_factory.mktemp("elsewhere")
    mp = offline_env(data_dir, tmp)
    labeling, _ = label_data_folder()
    write_csv(tmp / "labeled.csv", LABELED_COLUMNS, labeling.rows)
    config = tmp / "train.yaml"
    config.write_text(f"models_dir: {tmp / 'store'}\naudit_folds: 0\nexperiment: elsewhere\n", encoding="utf-8")
    data = tmp / "data.yaml"
    data.write_text(f"labeled_csv: {tmp / 'labeled.csv'}\nlabel_issues_csv: {tmp / 'issues.csv'}\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    repo_models = tree(REPO_ROOT / "models")
    trained = cli("pipeline.train", "--model", "tfidf", "--config", str(config), "--data", str(data), env=env)
    first = {"champion": os.readlink(tmp / "store" / "champion") if (tmp / "store" / "champion").is_symlink() else None,
             "files": files(tmp / "store" / "current") if (tmp / "store" / "current").is_dir() else None}
    yield {"tmp": tmp, "config": config, "models": tmp / "store", "env": env, "repo_models": repo_models,
           "trained": trained, "first": first}
    mp.undo()


def test_train_exports_into_the_configured_models_dir(elsewhere):
    assert elsewhere["trained"].returncode == 0, elsewhere["trained"].stderr
    models = elsewhere["models"]
    assert (models / "tfidf").is_symlink() and os.readlink(models / "tfidf").startswith(f"{store.VERSIONS}/tfidf-")
    assert (models / store.LOCK).is_file()
    # the first export of a models directory becomes its default, a copy in that directory
    assert os.readlink(models / "current") == "champion" and elsewhere["first"]["files"] == files(models / "tfidf")
    assert str(models / "tfidf") in elsewhere["trained"].stdout
    assert tree(REPO_ROOT / "models") == elsewhere["repo_models"]


def test_promote_crowns_in_the_configured_models_dir(elsewhere):
    models = elsewhere["models"]
    proc = cli("pipeline.promote", "--config", str(elsewhere["config"]), env=elsewhere["env"])
    assert proc.returncode == 0, proc.stderr
    assert f"default model -> {models / 'champion'}" in proc.stdout
    # promote installed the champion anew (a fresh version), the same way train's first default was installed
    assert os.readlink(models / "champion") != elsewhere["first"]["champion"]
    assert os.readlink(models / "current") == "champion"
    assert files(models / "current") == files(models / "tfidf") == elsewhere["first"]["files"]
    assert len(list((models / store.VERSIONS).glob("champion-*"))) == 2  # the new one and the previous
    assert tree(REPO_ROOT / "models") == elsewhere["repo_models"]


def test_predict_answers_from_the_configured_models_dir(elsewhere):
    configured = cli("pipeline.predict", "--config", str(elsewhere["config"]), "--json", TITLE, env=elsewhere["env"])
    assert configured.returncode == 0, configured.stderr
    given = cli("pipeline.predict", "--model", str(elsewhere["models"] / "current"), "--json", TITLE,
                env=elsewhere["env"])
    assert json.loads(configured.stdout) == json.loads(given.stdout) and json.loads(given.stdout)["label"]
    # an empty models directory: the error names it
    empty = elsewhere["tmp"] / "empty.yaml"
    empty.write_text(f"models_dir: {elsewhere['tmp'] / 'nothing'}\n", encoding="utf-8")
    proc = cli("pipeline.predict", "--config", str(empty), TITLE, env=elsewhere["env"])
    assert proc.returncode == 2 and f"no trained model yet ({elsewhere['tmp'] / 'nothing' / 'current'})" in proc.stderr


def test_a_bad_train_config_is_one_line_naming_the_file_and_key(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("model_dir: elsewhere\n", encoding="utf-8")  # a typo of models_dir
    proc = subprocess.run([sys.executable, "-m", "pipeline.predict", "--config", str(config), TITLE], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr == f"error: {config}: model_dir: unknown key (got 'elsewhere')\n"
    config.write_text("models_dir: [1]\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"{config}: models_dir: "):
        store.configured_models_dir(config)


def test_every_stage_defaults_to_configs_train_yaml(tmp_path, monkeypatch):
    """With no --config, train, promote, predict, review and propose take models_dir from configs/train.yaml."""
    from pipeline import config, predict, promote, review
    from pipeline.config import TrainConfig, load_config

    # as shipped: comments only, so the default (repo/models), read without yaml and as load_config reads it
    assert store.configured_models_dir() == REPO_ROOT / "models" == \
        load_config(TrainConfig, config.CONFIG_DIR / "train.yaml").models_dir
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "train.yaml").write_text("models_dir: somewhere/else\n", encoding="utf-8")
    monkeypatch.setattr(config, "CONFIG_DIR", configs)
    where = REPO_ROOT / "somewhere" / "else"  # relative: from the repo root, as every RepoPath
    assert store.configured_models_dir() == where
    with pytest.raises(UserError, match=f"no trained model yet \\({where / 'current'}\\)"):
        predict.resolve_model_dir(None)
    seen = []
    monkeypatch.setattr(review, "candidates", lambda _cfg, model_dir, _limit: seen.append(model_dir) or [])
    review.review(None, 1, None, io.StringIO())
    assert seen == [where / "current"]
    # promote: one registered version and no champion, so it installs; the store and the copy are stand-ins
    version = {"version": "1", "run_id": "r1", "champion": False,
               "tags": {names.KIND: "tfidf", names.SCORE: "0.5", names.REPORT_ITEMS: "i",
                        names.REPORT_TRUTH: "p", names.REPORT_ANSWERS: "p"}}
    monkeypatch.setattr("pipeline.registry.registered_versions", lambda: [version])
    monkeypatch.setattr("pipeline.registry.set_champion", lambda _version: None)
    monkeypatch.setattr(promote, "models_lock", lambda models_dir: seen.append(models_dir) or contextlib.nullcontext())
    monkeypatch.setattr(promote, "install_default", lambda _run, _kind, models_dir: seen.append(models_dir) or where)
    assert "promoted tfidf v1" in promote.promote()
    assert seen[1:] == [where, where]


def test_the_champion_is_installed_one_way(elsewhere, tmp_path, monkeypatch):
    """train's first default and promote's install both go through store.install_champion: a swap of
    <models_dir>/champion (into .versions/) and then the link current -> champion, with the source's files."""
    from pipeline.config import TrainConfig, load_config
    from pipeline.models import load_model
    from pipeline.promote import install_default
    from pipeline.train import TrainResult, export

    swaps = []
    real = store.swapped_dir

    def spy(final):
        swaps.append(final)
        return real(final)

    monkeypatch.setattr(store, "swapped_dir", spy)
    models = tmp_path / "models"
    model = load_model(elsewhere["models"] / "tfidf")
    run_id = model.info["mlflow_run_id"]
    export(TrainResult(model=model, metrics={}, configs={}, data_info={}, label_counts={}),
           load_config(TrainConfig, overrides={"models_dir": str(models)}))
    assert swaps == [models / "champion"]  # the kind's own swap is train's; the champion's is the store's
    after_train = (os.readlink(models / "current"), files(models / "current"))
    install_default(run_id, "tfidf", models)
    assert swaps == [models / "champion"] * 2
    assert (os.readlink(models / "current"), files(models / "current")) == after_train == \
        ("champion", files(models / "tfidf"))
    assert os.readlink(models / "champion").startswith(f"{store.VERSIONS}/champion-")
