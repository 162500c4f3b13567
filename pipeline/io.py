"""Atomic file and directory writes: a crash or failed run never leaves a half-written output."""

import contextlib
import csv
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pipeline.cli import UserError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it into place only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    """Write rows (dicts) as UTF-8 CSV atomically."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path, required: Sequence[str] = (), delimiter: str = ",") -> list[dict]:
    """Read a UTF-8 CSV/TSV into dicts; a missing file or column is a one-line UserError."""
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise UserError(f"{path}: missing column(s) {', '.join(missing)} "
                                f"(found: {', '.join(reader.fieldnames or []) or 'none'})")
            return list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path}: unreadable as UTF-8 {'TSV' if delimiter == chr(9) else 'CSV'} ({err})") from None


def replace_dir(staged: Path, final: Path) -> None:
    """Swap a fully written directory into place; the old one is removed only after the swap."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old, ignore_errors=True)


def point_link(link: Path, target_name: str) -> None:
    """Atomically make `link` a relative symlink to `target_name` (a sibling)."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target_name)
    os.replace(tmp, link)


def sha256_lines(lines: Iterable[str]) -> str:
    """sha256 (hex) of the lines as UTF-8, each ended by a newline."""
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode("utf-8")).hexdigest()
