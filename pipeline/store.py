"""The models directory: its layout, its lock and the one way the default model changes.

    <models_dir>/                       TrainConfig.models_dir (configs/train.yaml; default: models/ in the repo)
        .lock                           held by a training run or a promotion (models_lock)
        .versions/<name>-<time>-<rand>/ the directories the links below point at (swapped_dir)
        <kind> -> .versions/<kind>-...  the latest export of each kind (tfidf, kobert, ensemble): `train`
        champion -> .versions/champion-...   a copy of the default model's directory (install_champion)
        current -> champion             the default model: `predict`, `review`, `propose`, the benches

Every link is switched in one rename, so a reader always finds a complete model directory; the previous version
stays (a reader may be loading it) and older ones go. A model directory describes itself (model.json): nothing
here, nor anything a reader of a model needs, comes from configs/ but where the models directory is.

To run against another models directory, set `models_dir` in a train config (a relative path is taken from the
repo root) and pass it to every stage: `python -m pipeline.train --config my.yaml`, then `pipeline.promote
--config my.yaml` and `pipeline.predict --config my.yaml "제목"` (or `--model DIR` for one model directory).
(KoBERT's cache of offline builds, `models/pretrained/`, is a setting of its own: KobertConfig.pretrained_dir.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pipeline.cli import UserError

VERSIONS = ".versions"  # <models_dir>/.versions/<name>-<time>-<random>: the directories links point at
LOCK = ".lock"
CHAMPION_NAME = "champion"  # the entries of a models directory (the registry's alias is names.CHAMPION)
CURRENT_NAME = "current"


def kind_dir(models_dir: Path, kind: str) -> Path:
    """Where `train` exports a kind: <models_dir>/<kind>."""
    return models_dir / kind


def champion_dir(models_dir: Path) -> Path:
    """The champion's copy: <models_dir>/champion."""
    return models_dir / CHAMPION_NAME


def current_link(models_dir: Path) -> Path:
    """The default model: <models_dir>/current (a link to champion)."""
    return models_dir / CURRENT_NAME


def configured_models_dir(config_path: Path | str | None = None) -> Path:
    """The models directory a train config sets (TrainConfig.models_dir; default configs/train.yaml), resolved
    against the repo root when relative. The file is read as strictly as `train` reads it: an unknown key or a
    bad value is one line naming the file and the key."""
    from pipeline.config import CONFIG_DIR, TrainConfig, load_config

    return load_config(TrainConfig, CONFIG_DIR / "train.yaml" if config_path is None else config_path).models_dir


def default_model(config_path: Path | str | None = None) -> Path:
    """<configured models_dir>/current: the model `predict` answers with when given no --model."""
    return current_link(configured_models_dir(config_path))


def install_champion(models_dir: Path, source_dir: Path) -> Path:
    """Copy the model directory `source_dir` into <models_dir>/champion in one atomic swap, then point
    <models_dir>/current at it; returns the champion's path. The one way the default model changes: the first
    export of a models directory (`train`) and `promote`, each holding models_lock. Killed at any point, the
    previous champion (or none) stays whole and `current` points at a complete directory or is absent."""
    champion = champion_dir(models_dir)
    with swapped_dir(champion) as staged:
        shutil.copytree(source_dir, staged, dirs_exist_ok=True)
    point_link(current_link(models_dir), champion.name)
    return champion


@contextlib.contextmanager
def swapped_dir(final: Path) -> Iterator[Path]:
    """Yield a new, unique directory to write into; when the block succeeds, `final` (a symlink) points at it
    in one atomic rename, so a reader finds a complete directory at every instant. On failure it is
    removed and `final` is untouched. The previous target stays (a reader may be loading it); older ones go."""
    store = final.parent / VERSIONS
    store.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=store, prefix=f"{final.name}-{datetime.now():%Y%m%d-%H%M%S}-"))
    staged.chmod(0o755)
    try:
        yield staged
        if final.is_symlink():
            previous = final.resolve()
        elif final.exists():  # a directory from before versioned swaps: moved aside once (the only gap)
            previous = store / f"{final.name}-legacy-{os.getpid()}"
            os.replace(final, previous)
        else:
            previous = None
        point_link(final, os.path.relpath(staged, final.parent))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    for old in store.glob(f"{final.name}-*"):
        if old.resolve() not in (staged.resolve(), previous):
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def models_lock(models_dir: Path) -> Iterator[None]:
    """One training run or promotion per models directory at a time. The OS releases the lock when its
    process ends, however it ends (kill -9 too), so a stale lock never blocks the next run."""
    import fcntl

    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / LOCK, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise UserError(f"another training run is in progress (pid {holder}) on {models_dir} "
                            "(a training or `promote`): wait for it to finish") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)


def point_link(link: Path, target_name: str) -> None:
    """Atomically make `link` a relative symlink to `target_name` (a sibling)."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target_name)
    os.replace(tmp, link)
