"""Fault tests for training runs and model files (#13): concurrent runs, kill -9 at each stage, crafted or
altered model files. Each test repeats a scenario that lost a model, ran a payload or hid a failure."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline import REPO_ROOT
from pipeline.cli import UserError
from pipeline.config import TfidfConfig
from pipeline.models import load_model
from pipeline.models.tfidf import TfidfModel
from pipeline.store import models_lock
from tests.conftest import make_ynat_rows, offline_env

# One fixture training run, as `python -m pipeline.train` does it, in a child process we can kill.
TRAIN = textwrap.dedent("""
    import sys
    from pipeline.cli import run
    from pipeline.config import TfidfConfig, TrainConfig, load_config
    from pipeline.models.tfidf import TfidfModel
    from pipeline.train import run_training
    from tests.conftest import label_data_folder

    def main():
        labeling, gold = label_data_folder()
        cfg = load_config(TrainConfig, overrides={"models_dir": sys.argv[1], "experiment": "faults", "audit_folds": 0})
        run_training(TfidfModel(TfidfConfig(C=float(sys.argv[2]))), labeling.rows, gold, cfg)

    run(main)
""")


def train_child(models: Path, env: dict, c: float = 4.0, failpoint: str = "") -> subprocess.CompletedProcess:
    env = {**env, "HEADLINE_FAILPOINT": failpoint}
    return subprocess.run([sys.executable, "-c", TRAIN, str(models), str(c)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def store(data_dir, tmp_path_factory):
    """A models folder with one good TF-IDF model, trained by a child process, and its MLflow store."""
    tmp = tmp_path_factory.mktemp("faults")
    mp = offline_env(data_dir, tmp)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = train_child(tmp / "models", env)
    assert proc.returncode == 0, proc.stderr
    yield {"models": tmp / "models", "env": env, "uri": env["MLFLOW_TRACKING_URI"]}
    mp.undo()


def client(store):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=store["uri"])  # explicit: other tests move mlflow's global URI


def registered(store) -> list:
    return client(store).search_model_versions("name='headline-topic'")


def runs(store, status: str) -> list:
    experiment = client(store).get_experiment_by_name("faults")
    return client(store).search_runs([experiment.experiment_id], f"attributes.status = '{status}'")


@pytest.mark.parametrize("stage", ["trained", "staged", "swapped"])
def test_kill_9_at_any_stage_leaves_a_complete_model_and_the_next_run_fails_the_dead_one(store, stage):
    models = store["models"]
    before = (models / "tfidf" / "model.json").read_bytes()
    versions = len(registered(store))
    proc = train_child(models, store["env"], c=0.5, failpoint=stage)
    assert proc.returncode == -signal.SIGKILL
    after = (models / "tfidf" / "model.json").read_bytes()
    assert (after != before) == (stage == "swapped")  # swapped in one rename, or not at all
    assert load_model(models / "tfidf").predict_proba(["경찰, 살인 피의자 구속영장 신청"]).shape == (1, 5)
    assert len(registered(store)) == versions  # registration comes after the swap: the killed run has none
    dead = runs(store, "RUNNING")
    assert len(dead) == 1
    assert train_child(models, store["env"]).returncode == 0  # the next run takes the lock ...
    assert not runs(store, "RUNNING")  # ... and marks the killed run FAILED
    assert dead[0].info.run_id in {r.info.run_id for r in runs(store, "FAILED")}
    assert len(list((models / ".versions").glob("tfidf-*"))) <= 2  # current and previous, no leftovers


def test_a_second_run_is_refused_while_one_holds_the_models_dir_and_a_killed_holder_frees_it(store):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from pipeline.store import models_lock\n"
                               f"with models_lock(Path({str(store['models'])!r})):\n"
                               "    print('locked', flush=True); time.sleep(120)"],
                              cwd=REPO_ROOT, env=store["env"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (store["models"] / "tfidf" / "model.json").read_bytes()
        proc = train_child(store["models"], store["env"], c=0.5)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"another training run is in progress (pid {holder.pid})" in proc.stderr
        assert (store["models"] / "tfidf" / "model.json").read_bytes() == before
        with pytest.raises(UserError, match="another training run"):
            with models_lock(store["models"]):
                pass
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with models_lock(store["models"]):  # kill -9 of the holder released it
        pass


def test_the_default_model_moves_only_by_promote(store):
    current = store["models"] / "current"
    default = (current / "model.json").read_bytes()
    assert train_child(store["models"], store["env"], c=0.01).returncode == 0  # a much weaker model
    assert (store["models"] / "tfidf" / "model.json").read_bytes() != default
    assert (current / "model.json").read_bytes() == default


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    rows = make_ynat_rows(per_template=4)
    topics = {"정치": "politics", "경제": "business", "스포츠": "sports", "사회": "crime"}
    model = TfidfModel(TfidfConfig(min_df=1)).fit([r["title"] for r in rows],
                                                  [topics.get(r["label"], "other") for r in rows])
    path = tmp_path_factory.mktemp("saved") / "tfidf"
    model.save(path)
    return path


def copy_of(saved: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(saved, tmp_path / "model"))


def rewrite_meta(model_dir: Path, **changes) -> None:
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    meta.update(changes)
    (model_dir / "model.json").write_text(json.dumps(meta), encoding="utf-8")


PAYLOAD = "import pathlib; pathlib.Path({marker!r}).write_text('ran')"


class Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return exec, (PAYLOAD.format(marker=self.marker),)


def test_a_crafted_pickle_never_runs_even_with_matching_hashes(saved, tmp_path):
    import hashlib
    import pickle

    marker = tmp_path / "ran.txt"
    model_dir = copy_of(saved, tmp_path)
    # 1. the old pickle file name: never opened
    (model_dir / "sklearn_pipeline.pkl").write_bytes(pickle.dumps(Payload(str(marker))))
    (model_dir / "tfidf.npz").unlink()
    rewrite_meta(model_dir, files={"sklearn_pipeline.pkl": hashlib.sha256(
        (model_dir / "sklearn_pipeline.pkl").read_bytes()).hexdigest()})
    with pytest.raises(UserError, match="retrain"):
        load_model(model_dir)
    # 2. a pickled object inside the arrays file, model.json's hash forged to match: numpy refuses it
    with np.load(saved / "tfidf.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["coef"] = np.array([Payload(str(marker))], dtype=object)
    np.savez(model_dir / "tfidf.npz", **arrays)
    rewrite_meta(model_dir, files={"tfidf.npz": hashlib.sha256((model_dir / "tfidf.npz").read_bytes()).hexdigest()})
    with pytest.raises(UserError, match="cannot load model weights"):
        load_model(model_dir)
    assert not marker.exists()


def test_an_altered_or_missing_weights_file_is_refused_before_it_is_read(saved, tmp_path):
    model_dir = copy_of(saved, tmp_path)
    data = bytearray((model_dir / "tfidf.npz").read_bytes())
    data[-100] ^= 1
    (model_dir / "tfidf.npz").write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match the sha256"):
        load_model(model_dir)
    (model_dir / "tfidf.npz").unlink()
    with pytest.raises(UserError, match="missing"):
        load_model(model_dir)
    rewrite_meta(model_dir, files={"../../etc/passwd": "0" * 64})
    with pytest.raises(UserError, match="outside the model directory"):
        load_model(model_dir)
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    del meta["files"]  # as saved before #13
    (model_dir / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(UserError, match="no file hashes"):
        load_model(model_dir)


@pytest.mark.parametrize("change, message", [
    ({"abstain_threshold": "high"}, "abstain_threshold"),
    ({"other_threshold": 1.5}, "other_threshold"),
    ({"calibration": {"method": "temperature", "temperature": -1}}, "temperature"),
    ({"calibration": {"method": "platt", "a": [1, 1], "b": [0, 0]}}, "not for 5 labels"),
    ({"calibration": {"method": "magic"}}, "calibration"),
    ({"labels": ["politics", "crime", "sports"]}, "coefficient rows for 3 labels"),
    ({"labels": ["politics", "crime", "sports", "business", "weather"]}, "labels"),
    ({"labels": ["politics", "crime", "sports", "business", "business"]}, "labels repeat"),
])
def test_hand_edited_model_json_is_a_one_line_error(saved, tmp_path, change, message):
    model_dir = copy_of(saved, tmp_path)
    rewrite_meta(model_dir, **change)
    with pytest.raises(UserError, match=message) as err:
        load_model(model_dir)
    assert "\n" not in str(err.value)


# --- a model directory is closed (#21): nothing it reads, or hashes, lies outside it -------------------------

def hashed_paths(monkeypatch) -> list[Path]:
    """Every path the model loader hashes from now on (a file outside the directory must never be one)."""
    import pipeline.models.base as base

    seen: list[Path] = []
    real = base.sha256_file
    monkeypatch.setattr(base, "sha256_file", lambda path: seen.append(Path(path)) or real(path))
    return seen


def assert_refused_unread(model_dir: Path, seen: list[Path], outside: Path, message: str = "outside") -> None:
    with pytest.raises(UserError, match=message) as err:
        load_model(model_dir)
    assert "\n" not in str(err.value)
    assert not [p for p in seen if os.path.realpath(p).startswith(str(outside))], seen


def test_a_listed_file_that_is_a_symlink_out_of_the_directory_is_never_hashed(saved, tmp_path, monkeypatch):
    import hashlib

    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    model_dir = copy_of(saved, tmp_path)
    (model_dir / "notes.txt").symlink_to(secret)
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    rewrite_meta(model_dir, files={**meta["files"], "notes.txt": hashlib.sha256(secret.read_bytes()).hexdigest()})
    assert_refused_unread(model_dir, hashed_paths(monkeypatch), outside, "notes.txt is a symlink that leads outside")


def test_weights_that_are_a_symlink_to_a_copy_elsewhere_are_refused(saved, tmp_path, monkeypatch):
    import shutil

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    model_dir = copy_of(saved, tmp_path)
    shutil.move(model_dir / "tfidf.npz", outside / "tfidf.npz")  # the same bytes: the hash alone would pass
    (model_dir / "tfidf.npz").symlink_to(outside / "tfidf.npz")
    assert_refused_unread(model_dir, hashed_paths(monkeypatch), outside, "tfidf.npz is a symlink that leads outside")


def test_a_listed_path_with_dotdot_is_refused_before_it_is_hashed(saved, tmp_path, monkeypatch):
    import shutil

    model_dir = copy_of(saved, tmp_path)
    shutil.copy(model_dir / "tfidf.npz", tmp_path / "tfidf.npz")  # one level up: ../tfidf.npz hashes the same
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    rewrite_meta(model_dir, files={"../tfidf.npz": meta["files"]["tfidf.npz"], **meta["files"]})
    seen = hashed_paths(monkeypatch)
    with pytest.raises(UserError, match=r"\.\./tfidf\.npz \(listed in model\.json\) is outside the model directory"):
        load_model(model_dir)
    assert seen == []


def test_an_ensemble_whose_members_folder_is_a_symlink_out_is_refused(saved, tmp_path, monkeypatch):
    import shutil

    from pipeline.config import EnsembleConfig
    from pipeline.models.ensemble import EnsembleModel

    member = load_model(saved)
    ensemble = EnsembleModel(EnsembleConfig(), member.labels, members=[member, load_model(saved)])
    ensemble.weights = ensemble.info["weights"] = [0.5, 0.5]
    model_dir = tmp_path / "ensemble"
    ensemble.save(model_dir)
    assert load_model(model_dir).predict_proba(["경찰, 살인 피의자 구속영장 신청"]).shape == (1, 5)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(model_dir / "members", outside / "members")  # same files, same hashes, one directory out
    (model_dir / "members").symlink_to(outside / "members", target_is_directory=True)
    assert_refused_unread(model_dir, hashed_paths(monkeypatch), outside, "members is a symlink that leads outside")


def test_links_that_stay_inside_and_a_directory_reached_through_links_still_load(saved, tmp_path):
    model_dir = copy_of(saved, tmp_path)
    (model_dir / "same.npz").symlink_to("tfidf.npz")  # inside: harmless, and not read
    (tmp_path / "current").symlink_to(model_dir, target_is_directory=True)  # as models/current is
    assert load_model(tmp_path / "current").predict_proba(["코스피 2800선 회복"]).shape == (1, 5)


def test_weights_model_json_does_not_list_are_not_read(saved, tmp_path):
    import hashlib

    model_dir = copy_of(saved, tmp_path)
    (model_dir / "notes.txt").write_text("x", encoding="utf-8")
    # tfidf.npz is there but unlisted, so unchecked: it would be read blind
    rewrite_meta(model_dir, files={"notes.txt": hashlib.sha256(b"x").hexdigest()})
    with pytest.raises(UserError, match="does not list tfidf.npz"):
        load_model(model_dir)
