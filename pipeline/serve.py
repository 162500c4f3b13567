"""Serve: the champion behind MLflow's own scoring server, with bounds in front of it (`make serve`).

    python -m pipeline.serve [--model models:/headline-topic@champion] [--port 5001] [--workers 1]
                             [--max-rows 10000] [--max-bytes 8388608]

The app is MLflow's (`mlflow.pyfunc.scoring_server.init` on the loaded pyfunc: the same /ping, /health,
/version and /invocations, the same answers) run by uvicorn on 127.0.0.1, as `mlflow models serve
--env-manager local` runs it. MLflow's server reads any body whole and cannot be told a limit; it answers a
request without Content-Type or with JSON nested 1,000 deep with a 500; it turns `null` into the title "None"
and refuses a whole request for one lone surrogate; it reads CSV with pandas, which cuts a title at an
unquoted comma. So every POST /invocations passes RequestGuard first, which

- refuses a body over MAX_BYTES (413, before reading it when Content-Length says so) and more than MAX_ROWS
  rows (413), a missing or unknown Content-Type (415), JSON it cannot parse or nested too deep (400), a CSV
  row with more or fewer fields than the header (400, naming the line);
- hands MLflow one canonical request, `dataframe_split` with a `title` column, whatever the format (JSON
  `inputs`, `instances`, `dataframe_split`, `dataframe_records`; CSV; Parquet), one row per input row: a cell
  MLflow would mangle or refuse (a number, a list, a lone surrogate) becomes a marked cell that the pyfunc
  answers as an error row (pipeline.serving.wire_cell), so a bad row never fails the request;
- lets at most IN_FLIGHT requests per worker be read and answered at once (the others wait, unread: uvicorn
  stops reading a socket whose body is not consumed), so a worker's memory stays bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pipeline.cli import UserError, run
from pipeline.names import CHAMPION_URI

MAX_ROWS = 10_000  # rows per request: ~1 s of TF-IDF work; send more in several requests
MAX_BYTES = 4 * 1024 * 1024  # 10,000 headlines of ~70 characters (twice the usual) as json.dumps writes them
DRAIN_BYTES = 64 * 1024 * 1024  # of a body over the limit, read and dropped so the client can read its 413
IN_FLIGHT = 2  # requests a worker reads and answers at once; two keep the CPU busy while one is being parsed
MODEL_PATH_ENV = "HEADLINE_SERVE_MODEL_PATH"  # the downloaded model, for each uvicorn worker to load
LIMIT_ENV = {"max_rows": "HEADLINE_SERVE_MAX_ROWS", "max_bytes": "HEADLINE_SERVE_MAX_BYTES",
             "in_flight": "HEADLINE_SERVE_IN_FLIGHT"}
REQUEST_FORMATS = ("inputs", "instances", "dataframe_split", "dataframe_records")
JSON, CSV, PARQUET = "application/json", "text/csv", "application/vnd.apache.parquet"

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    max_rows: int = MAX_ROWS
    max_bytes: int = MAX_BYTES
    in_flight: int = IN_FLIGHT

    @classmethod
    def from_env(cls) -> Limits:
        return cls(**{field: int(os.environ[name]) for field, name in LIMIT_ENV.items() if os.environ.get(name)})


class Refusal(Exception):
    """A request answered here with a 4xx and one line of why, MLflow's error shape."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _too_large(message: str) -> Refusal:
    return Refusal(413, "REQUEST_LIMIT_EXCEEDED", message)


def _bad(message: str) -> Refusal:
    return Refusal(400, "BAD_REQUEST", message)


# --- the body -> the title cells, one per input row --------------------------------------------------------

def request_cells(content_type: str | None, body: bytes, limits: Limits) -> list:
    """The title cells of a request body, one per input row, in order; a Refusal for what is not a request."""
    if not content_type or not content_type.strip():
        raise Refusal(415, "BAD_REQUEST", f"no Content-Type: send {JSON} (or {CSV}, {PARQUET})")
    mime, *parameters = (part.strip().lower() for part in content_type.split(";"))
    charset = next((p.partition("=")[2].strip('"') for p in parameters if p.startswith("charset=")), "utf-8")
    if charset not in ("utf-8", "utf8"):
        raise Refusal(415, "BAD_REQUEST", f"charset {charset}: the server reads UTF-8 only")
    if mime == JSON:
        cells = json_cells(body)
    elif mime == CSV:
        cells = csv_cells(body)
    elif mime == PARQUET:
        cells = parquet_cells(body, limits)
    else:
        raise Refusal(415, "BAD_REQUEST", f"Content-Type {mime}: send {JSON}, {CSV} or {PARQUET}")
    if len(cells) > limits.max_rows:
        raise _too_large(f"{len(cells):,} rows in one request; at most {limits.max_rows:,}: send them in several")
    return cells


def json_cells(body: bytes) -> list:
    """MLflow's four JSON formats; only their known shape is walked, so nothing nested reaches MLflow."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise _bad("JSON nested too deeply to parse; a request is an object of at most three levels") from None
    except UnicodeDecodeError as err:
        raise _bad(f"the body is not UTF-8 (byte 0x{body[err.start]:02x} at offset {err.start})") from None
    except ValueError as err:
        raise _bad(f"the body is not valid JSON ({err})") from None
    keys = [key for key in REQUEST_FORMATS if isinstance(payload, dict) and key in payload]
    if len(keys) != 1:
        found = ", ".join(payload) if isinstance(payload, dict) else type(payload).__name__
        raise _bad(f"a request is a JSON object with exactly one of {', '.join(REQUEST_FORMATS)} "
                   f"(got: {found or 'none'})")
    value = payload[keys[0]]
    if keys[0] == "dataframe_split":
        return _split_cells(value)
    if keys[0] == "dataframe_records":
        if not isinstance(value, list):
            raise _bad("dataframe_records is a list of objects, one per row")
        return [row.get("title") if isinstance(row, dict) else _not_a_row("an object") for row in value]
    if isinstance(value, dict):  # {"inputs": {"title": [...]}}: columns
        if "title" not in value:
            raise _bad(f"no title column (columns: {', '.join(value) or 'none'})")
        column = value["title"]
        return column if isinstance(column, list) else [column]
    if isinstance(value, list):  # a list of titles, or of {"title": ...} records
        return [row.get("title") if isinstance(row, dict) else row for row in value]
    return [value]  # one title


def _split_cells(value) -> list:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or not isinstance(
            value.get("data"), list):
        raise _bad("dataframe_split is an object with a columns list and a data list of rows")
    columns = value["columns"]
    if "title" not in columns:
        raise _bad(f"no title column (columns: {', '.join(map(str, columns)) or 'none'})")
    at = columns.index("title")
    return [row[at] if isinstance(row, list) and len(row) == len(columns)
            else _not_a_row(f"a list of {len(columns)} cells") for row in value["data"]]


def _not_a_row(shape: str):
    """A malformed row is answered as an error row of its own, not a failed request."""
    from pipeline.serving import problem_cell

    return problem_cell(f"row is not {shape}")


def csv_cells(body: bytes) -> list:
    """A CSV body read as strictly as the pipeline reads its files (pipeline.io): a row whose field count is off
    (an unquoted comma in a title) is refused naming its line, never cut at the comma as pandas would."""
    from pipeline.io import read_csv_text

    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise _bad(f"the body is not UTF-8 (byte 0x{body[err.start]:02x} at offset {err.start})") from None
    try:
        rows = read_csv_text(text, "CSV body", required=("title",))
    except UserError as err:
        raise _bad(f"{err}") from None
    return [row["title"] for row in rows]


def parquet_cells(body: bytes, limits: Limits) -> list:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(body))
    except Exception as err:  # pyarrow's errors for a foreign or truncated body
        raise _bad(f"the body is not readable Parquet ({str(err).splitlines()[0]})") from None
    if parquet.metadata.num_rows > limits.max_rows:  # counted in the footer, before any row is read
        raise _too_large(f"{parquet.metadata.num_rows:,} rows in one request; at most {limits.max_rows:,}")
    if "title" not in parquet.schema_arrow.names:
        raise _bad(f"no title column (columns: {', '.join(parquet.schema_arrow.names)})")
    return parquet.read(columns=["title"]).column("title").to_pylist()


def canonical_body(cells: list) -> bytes:
    """One dataframe_split request for MLflow: strings and nulls only (wire_cell marks the rest)."""
    from pipeline.serving import wire_cell

    return json.dumps({"dataframe_split": {"columns": ["title"], "data": [[wire_cell(c)] for c in cells]}}).encode()


# --- the ASGI guard -----------------------------------------------------------------------------------------

class RequestGuard:
    """ASGI middleware around MLflow's scoring app: bounds, checks and canonicalises POST /invocations."""

    def __init__(self, app, limits: Limits):
        self.app, self.limits = app, limits
        self.slots = asyncio.Semaphore(limits.in_flight)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/invocations":
            await self.app(scope, receive, send)
            return
        async with self.slots:
            try:
                body = await self._read(scope, receive)
                headers = dict(scope["headers"])
                content_type = headers.get(b"content-type", b"").decode("latin-1")
                # parsing is CPU work: off the event loop, as MLflow runs its own
                body = await asyncio.to_thread(lambda: canonical_body(request_cells(content_type, body,
                                                                                    self.limits)))
            except Refusal as refusal:
                await _respond(send, refusal)
                return
            except _ClientGone:
                return
            headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
            headers += [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
            await self.app({**scope, "headers": headers}, _replay(body, receive), send)

    async def _read(self, scope: dict, receive: Receive) -> bytes:
        """The body, refused once it passes max_bytes. What is left of a refused body is read and dropped (up to
        DRAIN_BYTES more; it costs no memory), because most clients (Python's http.client, requests) send the
        whole body before reading the answer and would see a reset connection instead of the 413."""
        limit = self.limits.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = _too_large(f"request body over {limit:,} bytes; send the rows in several requests")
        if declared is not None and declared.isdigit() and int(declared) > limit + DRAIN_BYTES:
            raise too_large  # not worth reading: answered at once, the connection closed
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk, more = message.get("body", b""), message.get("more_body", False)
            size += len(chunk)
            if size > limit + DRAIN_BYTES:
                break
            if size <= limit:
                chunks.append(chunk)
        if size > limit:
            raise too_large
        return b"".join(chunks)


class _ClientGone(Exception):
    pass


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands MLflow the canonical body, then the client's own messages (its disconnect)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Send, refusal: Refusal) -> None:
    content = json.dumps({"error_code": refusal.code, "message": refusal.message}).encode()
    await send({"type": "http.response.start", "status": refusal.status,
                "headers": [(b"content-type", JSON.encode()), (b"content-length", str(len(content)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": content})


def create_app() -> RequestGuard:
    """Each uvicorn worker's app: MLflow's scoring server on the downloaded model, behind the guard."""
    from pipeline.serving import scoring_app

    return RequestGuard(scoring_app(os.environ[MODEL_PATH_ENV]), Limits.from_env())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=CHAMPION_URI, help="MLflow model URI")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--max-rows", type=int, default=MAX_ROWS, help=f"rows per request (default {MAX_ROWS:,})")
    parser.add_argument("--max-bytes", type=int, default=MAX_BYTES,
                        help=f"bytes per request body (default {MAX_BYTES:,})")
    args = parser.parse_args()
    import uvicorn

    from pipeline.registry import download_model

    with tempfile.TemporaryDirectory(prefix="headline-serve-") as tmp:
        os.environ[MODEL_PATH_ENV] = str(download_model(args.model, tmp))
        os.environ[LIMIT_ENV["max_rows"]], os.environ[LIMIT_ENV["max_bytes"]] = str(args.max_rows), str(args.max_bytes)
        print(f"serving {args.model} on http://{args.host}:{args.port} (at most {args.max_rows:,} rows and "
              f"{args.max_bytes:,} bytes per request)", file=sys.stderr, flush=True)
        uvicorn.run("pipeline.serve:create_app", factory=True, host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    run(main)
