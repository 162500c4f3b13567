"""The MLflow SQLite store (#21): created once, under a lock, however many commands open a new one at once; a
store left half-created is named in one line with the command that repairs it."""

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline import REPO_ROOT

# What `make compare` does to the store (experiments, then the registry), started by several processes at once:
# each imports everything first and waits for GO, so they all open the new store in the same instant.
OPEN_STORE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from pipeline.cli import run
    from pipeline import registry

    def main():
        while not Path(sys.argv[1]).exists():
            time.sleep(0.005)
        registry.latest_runs("headline-topics")
        registry.registered_versions()
        print("ok")

    run(main)
""")

CHILDREN = 4


def start_all(db: Path, go: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "PYTHONPATH": str(REPO_ROOT)}
    return [subprocess.Popen([sys.executable, "-c", OPEN_STORE, str(go)], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(CHILDREN)]


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.mark.parametrize("attempt", range(2))  # a race: twice, as the issue tried it
def test_several_processes_on_a_new_store_all_succeed(tmp_path, attempt):
    db, go = tmp_path / "mlflow.db", tmp_path / "go"
    children = start_all(db, go)
    try:
        time.sleep(8)  # the imports (mlflow takes seconds) are done before the store is touched
        go.touch()
        results = [child.communicate(timeout=240) for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0 and out.strip() == "ok", err[-3000:]
    names = tables(db)
    assert "alembic_version" in names and not [t for t in names if t.startswith("_alembic_tmp_")]


def command(module: str, db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"})


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    from pipeline import tracking

    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    tracking.use_store()
    assert tracking.store_problem(db) is None
    return db


@pytest.mark.parametrize("damage, named, repair", [
    # all migrations ran, one copy was left by a process that died: dropped in place
    ("CREATE TABLE _alembic_tmp_runs (run_uuid VARCHAR(32))", "leftover table _alembic_tmp_runs", "dropped"),
    # created, never recorded: an empty store, moved aside and created anew
    ("DROP TABLE alembic_version", "no alembic_version", "half-created one is now"),
])
def test_a_half_created_store_is_named_with_the_command_that_repairs_it(store, damage, named, repair):
    with sqlite3.connect(store) as conn:
        conn.execute(damage)
    err = one_line(command("pipeline.compare", store))
    assert f"error: {store} is a half-created MLflow store ({named}" in err
    assert "python -m pipeline.tracking repair-store" in err
    repaired = command("pipeline.tracking", store, "repair-store")
    assert repaired.returncode == 0, repaired.stderr
    assert repair in repaired.stdout
    assert bool(list(store.parent.glob("mlflow.db.half-created-*"))) == (repair != "dropped")  # aside, not deleted
    from pipeline import tracking

    assert tracking.store_problem(store) is None
    assert "no finished runs" in one_line(command("pipeline.compare", store))  # opens it: a new, empty store


def test_a_store_with_runs_is_never_moved_aside(store):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    client.create_run(client.create_experiment("kept"))
    with sqlite3.connect(store) as conn:  # a finished migration's leftover: dropped, the runs stay
        conn.execute("CREATE TABLE _alembic_tmp_runs (run_uuid VARCHAR(32))")
    repaired = command("pipeline.tracking", store, "repair-store")
    assert repaired.returncode == 0 and "dropped _alembic_tmp_runs" in repaired.stdout, repaired.stderr
    assert "_alembic_tmp_runs" not in tables(store) and len(client.search_runs([client.get_experiment_by_name(
        "kept").experiment_id])) == 1
    with sqlite3.connect(store) as conn:  # a creation that never finished, yet runs were written: a person decides
        conn.execute("CREATE TABLE _alembic_tmp_runs (run_uuid VARCHAR(32))")
        conn.execute("DROP TABLE alembic_version")
    err = one_line(command("pipeline.tracking", store, "repair-store"))
    assert "holds 1 runs and models: not moved" in err and "mlflow db upgrade" in err
    assert "_alembic_tmp_runs" in tables(store) and not list(store.parent.glob("mlflow.db.half-created-*"))
