"""Ingest: every headline source -> one deduplicated headline table with provenance.

    python -m pipeline.ingest [--config configs/data.yaml]

Sources: KLUE-YNAT, listing exports and RSS archives (each CSV file is a source, named by its file stem:
naver_sections_2026-06-05, chosun_society_2024-05_2026-06, ...) and saved listing pages (configs/data.yaml).
Output: data/interim/headlines.csv, one row per distinct headline (dedupe key from pipeline.text), first
source wins, `n_seen` counts the copies; `source` travels through every later stage. Same input, same
output, byte for byte.
"""

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pipeline.cli import UserError, run
from pipeline.config import CONFIG_DIR, DataConfig, load_config
from pipeline.io import read_csv, write_csv
from pipeline.text import normalize_title

HEADLINE_COLUMNS = ("title", "text", "tags", "key", "source", "source_file", "site", "date", "section", "n_seen")
YNAT_SITE = "yna.co.kr"

# One board row of a saved listing page: 번호 제목 글쓴이 날짜 (2024.07.31, 2024-07-31 or 24.07.31).
_BOARD_ROW = re.compile(r"^\s*(\d+)\s+(.+?)\s+(\S+)\s+(\d{2,4})[.\-/](\d{1,2})[.\-/](\d{1,2})\.?\s*$")
_BOARD_HEADER = re.compile(r"^\s*번호\s+제목\b")
_DATE = re.compile(r"(\d{4})[.\-/년]\s*(\d{1,2})[.\-/월]\s*(\d{1,2})")


def record(title: str, source: str, source_file: str, site: str = "", date: str = "",
           section: str = "") -> dict:
    """One raw headline with provenance; normalisation happens in build_table."""
    return {"title": title, "source": source, "source_file": source_file, "site": site,
            "date": date, "section": section}


def iso_date(text: str) -> str:
    """'2024.07.31' / '2024-7-31' / '2024년 7월 31일' -> '2024-07-31'; '' when there is no date."""
    m = _DATE.search(text or "")
    return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}" if m else ""


def read_ynat(cfg: DataConfig) -> list[dict]:
    """KLUE-YNAT through `datasets`: the configured CSV, else the Hub copy (klue/klue, ynat)."""
    if cfg.ynat_csv:
        path = cfg.root() / cfg.ynat_csv
        if not path.is_file():
            raise UserError(f"YNAT CSV not found: {path} (check ynat_csv in configs/data.yaml and HEADLINE_DATA_DIR)")
        # parsed strictly first: a bad row is one line naming it, before `datasets` (a traceback) sees the file
        n_rows = len(read_csv(path, required=("title", "label")))
        datasets = _datasets()
        ds = datasets.load_dataset("csv", data_files=str(path), split="train", keep_in_memory=True)
        if len(ds) != n_rows:  # two parsers, one file: they must agree, or rows would be lost unnoticed
            raise UserError(f"{path}: datasets read {len(ds)} rows where the CSV has {n_rows}")
        source_file, sections = path.name, [s or "" for s in ds["label"]]
    else:
        datasets = _datasets()
        try:
            ds = datasets.load_dataset(cfg.ynat_hub_id, cfg.ynat_hub_config, split="train")
        except Exception as err:  # offline, hub down, dataset moved: all end the same way
            raise UserError(
                f"could not load YNAT from the Hub ({cfg.ynat_hub_id}/{cfg.ynat_hub_config}: "
                f"{type(err).__name__}); for a local copy set ynat_csv in configs/data.yaml "
                "(a CSV with title,label columns) under HEADLINE_DATA_DIR") from None
        names = ds.features["label"].names
        source_file, sections = f"hub:{cfg.ynat_hub_id}/{cfg.ynat_hub_config}", [names[i] for i in ds["label"]]
    dates = ds["date"] if "date" in ds.column_names else [""] * len(ds)
    return [record(t, "ynat", source_file, YNAT_SITE, iso_date(d or ""), s)
            for t, s, d in zip(ds["title"], sections, dates, strict=True)]


def _datasets():
    import datasets

    datasets.disable_progress_bars()
    return datasets


def read_listing_csv(path: Path) -> list[dict]:
    """A listing export or RSS archive: title, section (`|`-joined when several), date (or listed_on), site.
    The file is the source: its stem names it."""
    rows = read_csv(path, required=("title",))
    return [record(r["title"] or "", path.stem, path.name, r.get("site") or "",
                   iso_date(r.get("date") or r.get("listed_on") or ""), r.get("section") or "")
            for r in rows]


def parse_board_text(text: str, source_file: str, site: str = "") -> list[dict]:
    """Rows `번호 제목 글쓴이 날짜` of a saved board page; the article text around them is ignored."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if _BOARD_HEADER.match(line)), None)
    rows = []
    for line in lines[header + 1 if header is not None else 0:]:
        m = _BOARD_ROW.match(line)
        if m:
            year = int(m.group(4)) + (2000 if len(m.group(4)) == 2 else 0)
            date = f"{year:04d}-{int(m.group(5)):02d}-{int(m.group(6)):02d}"
            rows.append(record(m.group(2), "page", source_file, site or m.group(3), date))
    return rows


def parse_html_listing(html: str, source_file: str) -> list[dict]:
    """Headlines of an HTML board (a table with a 제목 column) or news list (title links in <li>)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    site = _meta(soup, "og:site_name") or ""
    section = _meta(soup, "article:section") or ""
    rows = _html_table_rows(soup) or _html_list_rows(soup)
    return [record(title, "page", source_file, site, date, section) for title, date in rows]


def _meta(soup, prop: str) -> str | None:
    tag = soup.find("meta", attrs={"property": prop}) or soup.find("meta", attrs={"name": prop})
    # one line, like every field of the headline table (its reader takes a line break for a quote left open)
    return " ".join(tag.get("content", "").split()) if tag else None


def _html_table_rows(soup) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for table in soup.find_all("table"):
        trs = table.find_all("tr")
        if not trs:
            continue
        header = [c.get_text(strip=True) for c in trs[0].find_all(["th", "td"])]
        title_col = next((i for i, h in enumerate(header) if "제목" in h or h.lower() == "title"), None)
        if title_col is None:
            continue
        date_col = next((i for i, h in enumerate(header) if h in ("날짜", "등록일", "작성일", "date")), None)
        for tr in trs[1:]:
            cells = tr.find_all(["td", "th"])
            if len(cells) <= title_col:
                continue
            has_date = date_col is not None and date_col < len(cells)
            date = iso_date(cells[date_col].get_text(strip=True)) if has_date else ""
            title = cells[title_col].find("a") or cells[title_col]
            rows.append((title.get_text(" ", strip=True), date))
    return rows


_TITLE_CLASS = re.compile(r"(^|[_-])(tit|title|headline)", re.I)
_DATE_CLASS = re.compile(r"(date|time|info)", re.I)


def _html_list_rows(soup) -> list[tuple[str, str]]:
    found = [(li.find(class_=_TITLE_CLASS), li.find(class_=_DATE_CLASS)) for li in soup.find_all("li")]
    return [(title.get_text(" ", strip=True), iso_date(date.get_text(" ", strip=True)) if date else "")
            for title, date in found if title is not None]


def read_page(path: Path) -> list[dict]:
    """A saved listing page; a page with no headline rows is malformed and an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    if path.suffix.lower() in (".html", ".htm"):
        rows = parse_html_listing(text, path.name)
    else:
        rows = parse_board_text(text, path.name, site=path.stem.split("_")[0])
    if not rows:
        raise UserError(f"{path}: no headline rows found (expected '번호 제목 글쓴이 날짜' rows, an HTML table "
                        "with a 제목 column, or <li> items with a title link)")
    return rows


def _glob(root: Path, patterns: Iterable[str]) -> list[Path]:
    return sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})


def collect(cfg: DataConfig) -> list[dict]:
    """All raw records, in a fixed order: YNAT, listing exports, pages (files sorted by name)."""
    root = cfg.root()
    # the small files are read first, so a malformed one fails before YNAT's slower load
    listings = [rec for path in _glob(root, cfg.listing_csvs) for rec in read_listing_csv(path)]
    pages = [rec for path in _glob(root, cfg.pages) for rec in read_page(path)]
    return read_ynat(cfg) + listings + pages


def build_table(records: Iterable[dict]) -> list[dict]:
    """Normalise, drop empty titles, collapse duplicates (same dedupe key) to their first record."""
    table: dict[str, dict] = {}
    for rec in records:
        norm = normalize_title(rec["title"] or "")
        if not norm.key:
            continue
        if norm.key in table:
            table[norm.key]["n_seen"] += 1
            continue
        table[norm.key] = {**rec, "title": " ".join(rec["title"].split()), "text": norm.text,
                           "tags": "|".join(norm.tags), "key": norm.key, "n_seen": 1}
    return list(table.values())


def ingest(cfg: DataConfig) -> list[dict]:
    return build_table(collect(cfg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG_DIR / "data.yaml", type=Path)
    args = parser.parse_args()
    cfg = load_config(DataConfig, args.config)
    records = collect(cfg)
    rows = build_table(records)
    out = cfg.headlines_csv
    write_csv(out, HEADLINE_COLUMNS, rows)
    by_source = Counter(row["source"] for row in rows)
    dupes = sum(r["n_seen"] - 1 for r in rows)
    empty = len(records) - dupes - len(rows)  # no row leaves unaccounted for
    print(f"{len(rows)} headlines ({', '.join(f'{k} {v}' for k, v in by_source.items())}); "
          f"{dupes} duplicates collapsed" + (f"; {empty} rows without headline text skipped" if empty else "")
          + f" -> {out}")


if __name__ == "__main__":
    run(main)
