"""Atomic file writes (a crash or failed run never leaves a half-written output), strict CSV reading, hashes,
fault-test failpoints. The models directory (versions, links, lock) is pipeline.store's."""

import contextlib
import csv
import hashlib
import io
import os
import signal
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pipeline.cli import UserError
from pipeline.text import MAX_TITLE_CHARS


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
    """Read a UTF-8 CSV/TSV into dicts, strictly (see read_csv_numbered): a missing file or column, or a
    malformed row, is a one-line UserError naming the file and line."""
    return [row for _, row in read_csv_numbered(path, required, delimiter)]


def read_csv_numbered(path: Path, required: Sequence[str] = (), delimiter: str = ",") -> list[tuple[int, dict]]:
    """(line number, row) for every row of a UTF-8 CSV/TSV. Strict, so that no row is ever dropped or merged
    silently: a row with more or fewer fields than the header, a quote left open (it swallows the rows after
    it into one field) or a field that spans lines (a headline is one line) stops with `path:LINE: reason`.
    Blank lines hold no row and are skipped."""
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return _strict_rows(csv.reader(fh, delimiter=delimiter, strict=True), path, required)
    except UnicodeDecodeError:
        raise UserError(_not_utf8(path, "TSV" if delimiter == "\t" else "CSV")) from None


def read_csv_text(text: str, where: str, required: Sequence[str] = ()) -> list[dict]:
    """Rows of CSV text that is not a file (a request body), as strictly as read_csv: errors name `where:LINE`."""
    return [row for _, row in _strict_rows(csv.reader(io.StringIO(text, newline=""), strict=True), where, required)]


def _strict_rows(reader, path: Path | str, required: Sequence[str]) -> list[tuple[int, dict]]:
    header: list[str] | None = None
    rows: list[tuple[int, dict]] = []
    start = 1  # the physical line the next record starts on; reader.line_num is where it ended
    try:
        for record in reader:
            if reader.line_num != start:  # a headline is one line: a field over several is a quote left open
                raise UserError(f"{path}:{start}: a quoted field opened here runs on to line {reader.line_num} "
                                "(a quote left open?); a row must be one line")
            if header is None and record:
                header = record
                _check_columns(path, header, required)
            elif record:
                if len(record) != len(header):
                    hint = " (an unquoted delimiter inside a field?)" if len(record) > len(header) else ""
                    raise UserError(f"{path}:{start}: {len(record)} fields where the header has {len(header)}{hint}")
                rows.append((start, dict(zip(header, record, strict=True))))
            start = reader.line_num + 1
    except csv.Error as err:
        if "field larger than field limit" in str(err):  # the csv module's words; the quoting may be fine
            raise UserError(f"{path}:{start}: a field longer than {csv.field_size_limit():,} characters (a headline "
                            f"has at most {MAX_TITLE_CHARS}): the row stops the stage, as a malformed one does; "
                            "fix the export or remove the row") from None
        at_end = "end of data" in str(err)  # the csv module's words for end of file inside a quoted field
        if at_end or reader.line_num > start:
            end = "the end of the file" if at_end else f"line {reader.line_num} ({err})"
            raise UserError(f"{path}:{start}: a quote left open here runs on to {end}") from None
        raise UserError(f"{path}:{start}: bad quoting ({err}); quote the whole field and double the quotes "
                        "inside it") from None
    if header is None:
        _check_columns(path, [], required)
    return rows


def _check_columns(path: Path | str, header: list[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'none'})")


def _not_utf8(path: Path, kind: str) -> str:
    """The one-line message for a file that is not UTF-8, naming the line of its first bad byte."""
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return f"{path}:{line}: not UTF-8 (byte 0x{data[err.start]:02x}); save the {kind} as UTF-8"
    return f"{path}: not UTF-8; save the {kind} as UTF-8"


def failpoint(name: str) -> None:
    """Fault tests (tests/test_faults.py) kill the process at a named stage: HEADLINE_FAILPOINT=<name>."""
    if os.environ.get("HEADLINE_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sha256_lines(lines: Iterable[str]) -> str:
    """sha256 (hex) of the lines as UTF-8, each ended by a newline."""
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode("utf-8")).hexdigest()
