import os
import subprocess
import sys

import pytest

from pipeline import REPO_ROOT
from pipeline.cli import UserError
from pipeline.config import DataConfig, load_config
from pipeline.ingest import (
    HEADLINE_COLUMNS,
    build_table,
    ingest,
    iso_date,
    parse_board_text,
    parse_html_listing,
    read_listing_csv,
    read_page,
    record,
)
from pipeline.io import write_csv
from tests.conftest import FIXTURES


def test_board_text_rows_only():
    rows = parse_board_text((FIXTURES / "board_2024-07-31.txt").read_text(encoding="utf-8"), "f.txt", site="board")
    assert [r["title"] for r in rows][:2] == ["[속보] 與野, 민생법안 국회 본회의 통과",
                                               "경찰, '마포 흉기 난동' 피의자 구속영장 신청"]
    assert len(rows) == 5  # the article text above the header (even a line ending in a date) is not a row
    assert rows[-1]["date"] == "2024-07-30" and rows[0]["site"] == "board"


def test_board_row_without_header_still_parsed():
    rows = parse_board_text("77 경찰, 절도범 검거 뉴스봇 24.07.31\n본문 문장입니다.", "x.txt")
    assert rows == [record("경찰, 절도범 검거", "page", "x.txt", "뉴스봇", "2024-07-31")]


def test_html_board_table():
    rows = parse_html_listing((FIXTURES / "board.html").read_text(encoding="utf-8"), "board.html")
    assert [r["title"] for r in rows] == ["[단독] 전세사기 일당 30억 편취…경찰 수사 착수", "도심 곳곳 싱크홀 공포…시민 불안"]
    assert rows[0]["site"] == "보드일보" and rows[0]["section"] == "사회" and rows[1]["date"] == "2024-07-31"


def test_html_news_list():
    rows = parse_html_listing((FIXTURES / "newslist.html").read_text(encoding="utf-8"), "list.html")
    assert [r["title"] for r in rows] == ["삼성전자, 2분기 영업이익 10조 돌파", "원·달러 환율 1,380원대…외국인 순매수"]
    assert {r["section"] for r in rows} == {"Economic"}


def test_page_without_rows_is_an_error(tmp_path):
    page = tmp_path / "empty.html"
    page.write_text("<html><body><p>기사 본문뿐</p></body></html>", encoding="utf-8")
    with pytest.raises(UserError, match="no headline rows"):
        read_page(page)


def test_page_not_utf8_is_an_error(tmp_path):
    page = tmp_path / "cp949.txt"
    page.write_bytes("번호 제목 글쓴이 날짜\n1 경찰 체포 봇 2024.07.31\n".encode("cp949"))
    with pytest.raises(UserError, match="UTF-8"):
        read_page(page)


def test_listing_csv_without_title_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("headline,section\n여야 합의,Politics\n", encoding="utf-8")
    with pytest.raises(UserError, match="missing column"):
        read_listing_csv(path)


def test_iso_date():
    assert iso_date("2026.6.5") == "2026-06-05" and iso_date("2024년 7월 31일") == "2024-07-31" and iso_date("") == ""


def test_duplicates_collapse_to_first_source():
    rows = build_table([record("[속보] 與, 野와 협상", "listing", "a.csv"), record("與, 野와 협상", "page", "b.txt"),
                        record("   ", "page", "b.txt"), record("다른 제목", "page", "b.txt")])
    assert [(r["source_file"], r["n_seen"]) for r in rows] == [("a.csv", 2), ("b.txt", 1)]
    assert rows[0]["text"] == "[속보] 여당, 야당와 협상" and rows[0]["tags"] == "속보"


def test_ingest_all_sources_and_is_deterministic(data_env, tmp_path):
    cfg = load_config(DataConfig)
    first, second = ingest(cfg), ingest(cfg)
    # each listing or RSS file is a source of its own, named by its stem
    assert {r["source"] for r in first} == {"ynat", "naver_2026-06-05", "dailies_2026-02", "page"}
    assert {r["source_file"] for r in first} >= {"ynat_train.csv", "naver_2026-06-05.csv", "dailies_2026-02.csv",
                                                  "board.html", "newslist.html", "board_2024-07-31.txt"}
    assert next(r["section"] for r in first if r["source"] == "dailies_2026-02") == "economy|it"  # as given
    write_csv(tmp_path / "a.csv", HEADLINE_COLUMNS, first)
    write_csv(tmp_path / "b.csv", HEADLINE_COLUMNS, second)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_missing_ynat_csv_is_a_clear_error(data_env):
    with pytest.raises(UserError, match="YNAT CSV not found"):
        ingest(load_config(DataConfig, overrides={"ynat_csv": "ynat/missing.csv"}))


def test_hub_fallback_offline_says_how_to_use_a_local_copy(data_dir, tmp_path):
    config = tmp_path / "data.yaml"
    config.write_text("ynat_csv: null\n", encoding="utf-8")
    env = {**os.environ, "HEADLINE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "pipeline.ingest", "--config", str(config)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: could not load YNAT from the Hub") and "ynat_csv" in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line, no traceback


def test_data_dir_unset_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("HEADLINE_DATA_DIR", raising=False)
    with pytest.raises(UserError, match="HEADLINE_DATA_DIR"):
        ingest(load_config(DataConfig))
