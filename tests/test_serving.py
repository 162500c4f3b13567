"""The champion behind MLflow's own scoring server (`make serve`), asked over real HTTP on a free loopback port.

    .venv/bin/python -m pytest -q tests/test_serving.py

A fixture model (the `two_kind_store` TF-IDF and tiny KoBERT runs) is crowned in a temporary store, then
`python -m pipeline.serve` (what `make serve` runs: MLflow's scoring app behind pipeline.serve's request guard)
is started by the test on 127.0.0.1 and stopped (its whole process group) whatever happens. Every door must give the same answer for the
same headline: the in-process pyfunc, the server and the predict CLI all go through predict_titles.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import REPO_ROOT, TOPICS
from pipeline.predict import predict_titles

GOOD = ["[속보] 경찰, 강도 살인 피의자 구속영장 신청", "코스피 2700선 회복…외국인 순매수",
        "프로야구 두산, 연장 끝에 LG에 역전승", "여야 원내대표 민생 예산안 협상 결렬", "서울 벚꽃축제 주말 개막"]
BAD = ["", "   ", "hello world", "가" * 501]
COLUMNS = ["title", "label", "confidence", *TOPICS, "error"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def champion(two_kind_store):
    """The temporary store with a champion crowned; yields its exported model directory."""
    from pipeline.models import load_model
    from pipeline.promote import promote

    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{two_kind_store['tmp']}/mlflow.db")
    promote(models_dir=two_kind_store["models_dir"])  # "already the champion" when test_registry crowned it
    current = two_kind_store["models_dir"] / "current"
    yield {"uri": os.environ["MLFLOW_TRACKING_URI"], "dir": current, "model": load_model(current)}
    mp.undo()


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (mlflow CLI, shell, uvicorn), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(champion, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": champion["uri"],
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # uvicorn by name
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.serve", "--model", "models:/headline-topic@champion",
                                 "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO_ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /ping in 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop(proc)


def post(url: str, payload: dict) -> tuple[int, dict]:
    return post_bytes(url, json.dumps(payload).encode(), "application/json")


def post_bytes(url: str, body: bytes, content_type: str | None) -> tuple[int, dict]:
    """POST a raw body (http.client: urllib would add a Content-Type of its own where we send none)."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": content_type} if content_type else {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data or b"{}")
    except ValueError:
        return response.status, {"message": data.decode("utf-8", "replace")}


def expected(model, titles: list[str]) -> list[dict]:
    """What the CLI answers: predict_titles, flattened like the pyfunc's rows."""
    rows = []
    for answer in predict_titles(model, titles):
        scores = answer["scores"] or {}
        rows.append({"title": answer["title"], "label": answer["label"], "confidence": answer["confidence"],
                     **{t: scores.get(t) for t in TOPICS}, "error": answer.get("error")})
    return rows


def assert_same(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(COLUMNS)
        for column in COLUMNS:
            if isinstance(w[column], float):
                assert g[column] == pytest.approx(w[column], abs=1e-9), (column, g, w)
            else:
                assert g[column] == w[column], (column, g, w)


# --- the pyfunc in process: the function every door calls -----------------------------------------------------

def test_pyfunc_takes_frames_lists_series_arrays_and_never_raises_on_a_bad_cell(champion):
    from pipeline.serving import answer_frame

    model = champion["model"]
    want = expected(model, GOOD)
    for given in (pd.DataFrame({"title": GOOD}), pd.DataFrame({"headline": GOOD}), GOOD, pd.Series(GOOD),
                  np.array(GOOD), np.array(GOOD).reshape(-1, 1), {"title": GOOD}):
        frame = answer_frame(model, given)
        assert list(frame.columns) == COLUMNS
        assert_same(frame.to_dict(orient="records"), want)
    cells = [GOOD[0], None, float("nan"), 5, 2.5, "", "hello", GOOD[1]]
    rows = answer_frame(model, pd.DataFrame({"title": pd.Series(cells, dtype=object)})).to_dict(orient="records")
    assert [r["label"] is None for r in rows] == [False, True, True, True, True, True, True, False]
    assert [r["error"] for r in rows[1:5]] == ["missing title", "missing title", "title is not text (got int)",
                                               "title is not text (got float)"]
    assert rows[5]["error"] == "empty title" and "Hangul" in rows[6]["error"]
    assert_same([rows[0], rows[7]], expected(model, [GOOD[0], GOOD[1]]))
    empty = answer_frame(model, pd.DataFrame({"title": []}))
    assert list(empty.columns) == COLUMNS and len(empty) == 0
    assert len(answer_frame(model, [])) == 0


def test_registered_version_has_signature_and_input_example(champion):
    import mlflow

    info = mlflow.models.get_model_info("models:/headline-topic@champion")
    assert info.signature.inputs.input_names() == ["title"]
    assert info.signature.inputs.input_types()[0].name == "string"
    assert info.signature.outputs.input_names() == COLUMNS
    assert info.saved_input_example_info is not None
    loaded = mlflow.pyfunc.load_model("models:/headline-topic@champion")
    example = pd.DataFrame(loaded.input_example)
    assert list(example.columns) == ["title"] and len(example) == 2
    assert_same(loaded.predict(example).to_dict(orient="records"), expected(champion["model"], list(example["title"])))


# --- the real server -------------------------------------------------------------------------------------------

def test_every_request_format_gives_the_clis_answer(server, champion):
    want = expected(champion["model"], GOOD)
    payloads = [{"dataframe_split": {"columns": ["title"], "data": [[t] for t in GOOD]}},
                {"dataframe_records": [{"title": t} for t in GOOD]},
                {"inputs": GOOD},
                {"inputs": {"title": GOOD}}]
    for payload in payloads:
        status, body = post(server, payload)
        assert status == 200, (payload, body)
        assert_same(body["predictions"], want)


def test_the_predict_cli_answers_the_same(server, champion):
    out = subprocess.run([sys.executable, "-m", "pipeline.predict", "--json", "--model", str(champion["dir"]),
                          GOOD[0]], capture_output=True, text=True, check=True, timeout=120)
    cli = json.loads(out.stdout)
    status, body = post(server, {"inputs": [GOOD[0]]})
    assert status == 200
    served = body["predictions"][0]
    assert (served["label"], served["confidence"]) == (cli["label"], cli["confidence"])
    assert {t: served[t] for t in TOPICS} == cli["scores"]


def test_bad_rows_get_an_error_and_the_good_rows_still_their_label(server, champion):
    titles = [GOOD[0], *BAD, GOOD[1]]
    for payload in ({"inputs": titles}, {"dataframe_records": [{"title": t} for t in titles]},
                    {"dataframe_split": {"columns": ["title"], "data": [[t] for t in titles]}}):
        status, body = post(server, payload)
        assert status == 200, body
        assert_same(body["predictions"], expected(champion["model"], titles))
    # nulls and numbers among strings: an error row each, never a 500
    status, body = post(server, {"dataframe_records": [{"title": GOOD[0]}, {"title": None}, {"title": 7}]})
    assert status == 200, body
    first, missing, number = body["predictions"]
    assert first["label"] is not None and first["error"] is None
    assert missing["label"] is None and missing["error"]
    assert number["label"] is None and number["error"]
    status, body = post(server, {"inputs": [GOOD[0], None, 7]})
    assert status == 200, body
    assert [p["label"] is None for p in body["predictions"]] == [False, True, True]


def test_requests_the_server_cannot_parse_are_4xx_not_500(server):
    for payload in ({"dataframe_records": [{"title": 7}]}, {"nothing": []}, {"dataframe_split": {"rows": []}}):
        status, _ = post(server, payload)
        assert status < 500, payload


def test_an_empty_list_gives_no_rows(server):
    for payload in ({"inputs": []}, {"dataframe_split": {"columns": ["title"], "data": []}}):
        status, body = post(server, payload)
        assert status == 200, body
        assert body["predictions"] == []


def test_a_thousand_rows_in_one_request_come_back_in_order(server, champion):
    titles = [f"{GOOD[i % len(GOOD)]} {i}" for i in range(1000)]
    titles[500] = ""
    status, body = post(server, {"inputs": titles})
    assert status == 200
    predictions = body["predictions"]
    assert [p["title"] for p in predictions] == titles
    assert predictions[500]["error"] == "empty title"
    assert sum(p["error"] is None for p in predictions) == 999
    assert_same(predictions, expected(champion["model"], titles))


# --- #21: bounded, no 500s, one row per input row at the HTTP door ---------------------------------------------

def test_a_request_over_the_row_or_byte_limit_is_refused_and_the_largest_allowed_answered(server):
    from pipeline.serve import MAX_BYTES, MAX_ROWS

    titles = [f"{GOOD[i % len(GOOD)]} {i}" for i in range(MAX_ROWS + 1)]
    status, body = post(server, {"inputs": titles})
    assert status == 413 and body["message"] == f"{MAX_ROWS + 1:,} rows in one request; at most {MAX_ROWS:,}: " \
                                                "send them in several", body
    status, body = post_bytes(server, b'{"inputs": ["' + b"x" * MAX_BYTES + b'"]}', "application/json")
    assert status == 413 and f"request body over {MAX_BYTES:,} bytes" in body["message"], body
    status, body = post(server, {"inputs": titles[:MAX_ROWS]})
    assert status == 200 and [p["title"] for p in body["predictions"]] == titles[:MAX_ROWS]


def test_no_content_type_and_json_nested_1000_deep_are_4xx_not_500(server):
    status, body = post_bytes(server, json.dumps({"inputs": GOOD}).encode(), None)
    assert status == 415 and "no Content-Type" in body["message"], body
    deep = b'{"inputs": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    status, body = post_bytes(server, deep, "application/json")
    assert status == 400 and "nested too deeply" in body["message"], body
    status, body = post_bytes(server, b'{"inputs": ' + b"[" * 200 + b'"x"' + b"]" * 200 + b"}", "application/json")
    assert status == 200 and body["predictions"][0]["error"] == "title is not text (got list)", body
    assert post(server, {"inputs": GOOD[:1]})[0] == 200  # and the server is still there


def test_a_lone_surrogate_or_a_null_is_an_error_row_among_good_rows(server, champion):
    # raw JSON: json.dumps would escape the surrogate the same way, "\ud800"
    for body in (b'{"inputs": ["%s", "\\ud800", null, 7, "%s"]}',
                 b'{"dataframe_records": [{"title": "%s"}, {"title": "\\ud800"}, {"title": null}, {"title": 7}, '
                 b'{"title": "%s"}]}',
                 b'{"dataframe_split": {"columns": ["title"], "data": [["%s"], ["\\ud800"], [null], [7], ["%s"]]}}',
                 b'{"inputs": {"title": ["%s", "\\ud800", null, 7, "%s"]}}'):
        status, answer = post_bytes(server, body % (GOOD[0].encode(), GOOD[1].encode()), "application/json")
        assert status == 200, answer
        rows = answer["predictions"]
        assert [r["error"] for r in rows] == [None, "title is not valid UTF-8 text", "missing title",
                                              "title is not text (got int)", None], body
        assert [r["title"] for r in rows] == [GOOD[0], None, None, None, GOOD[1]]  # never the title "None"
        assert_same([rows[0], rows[4]], expected(champion["model"], [GOOD[0], GOOD[1]]))


def test_a_csv_title_with_an_unquoted_comma_is_refused_naming_its_line_never_cut(server, champion):
    # the comma in the first row: pandas took the title's first half for an index and answered the second half
    status, body = post_bytes(server, f"title\n{GOOD[0]}\n{GOOD[1]}\n".encode(), "text/csv")
    assert status == 400 and body["message"].startswith("CSV body:2: 2 fields where the header has 1"), body
    quoted = f'title\n{GOOD[1]}\n"{GOOD[0]}"\n'.encode()
    status, body = post_bytes(server, quoted, "text/csv")
    assert status == 200, body
    assert_same(body["predictions"], expected(champion["model"], [GOOD[1], GOOD[0]]))


def test_the_pyfunc_in_process_answers_a_dict_of_columns_row_for_row(champion):
    import mlflow
    from mlflow.exceptions import MlflowException

    loaded = mlflow.pyfunc.load_model("models:/headline-topic@champion")
    # MLflow makes a dict of string lists ONE row holding the list: it was one error row for two titles
    assert_same(loaded.predict({"title": GOOD[:2]}).to_dict(orient="records"), expected(champion["model"], GOOD[:2]))
    titles = [GOOD[0], GOOD[1], None]
    for given in ({"title": titles}, pd.DataFrame({"title": titles}), pd.Series(titles, name="title")):
        rows = loaded.predict(given).to_dict(orient="records")
        assert len(rows) == 3 and [r["error"] for r in rows] == [None, None, "missing title"], given
        assert_same(rows[:2], expected(champion["model"], GOOD[:2]))
    # what README says MLflow's signature check refuses before the model runs (wrap them as a title column)
    for given in (GOOD, pd.Series(GOOD), np.array(GOOD), pd.DataFrame({"headline": GOOD})):
        with pytest.raises(MlflowException, match=r"missing inputs \['title'\]"):
            loaded.predict(given)
