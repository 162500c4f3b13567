"""The one table printer: Hangul lines up by display width; the printers moved onto it keep their shape."""

from pipeline.label import FunctionStats, format_stats, source_table
from pipeline.promote import comparison_table
from pipeline.propose import format_proposals
from pipeline.table import display_width, format_table


def test_hangul_cells_line_up_by_display_width():
    text = format_table(["source", "crime", "note"], [["매일경제", 12, "x"], ["ynat", 3, "한글 메모"]], right=(False, True))
    lines = text.splitlines()
    assert display_width("매일경제") == 8 and display_width("ynat") == 4
    # every line starts its third column at the same terminal column (a character count would not)
    starts = [display_width(line[:line.index(cell)]) for line, cell in zip(lines, ["note", "x", "한글"], strict=True)]
    assert starts == [17, 17, 17]
    assert [line.index(cell) for line, cell in zip(lines, ["note", "x", "한글"], strict=True)] == [17, 13, 17]
    assert len({display_width(line) for line in lines}) == 1  # the last column padded too: one width
    assert lines[1].startswith("매일경제  ") and lines[2].startswith("ynat      ")


def test_ragged_last_column_is_not_padded():
    lines = format_table(["a", "example"], [["1", "긴 예시 제목"], ["22", "x"]], ragged_last=True).splitlines()
    assert lines == ["a   example", "1   긴 예시 제목", "22  x"]


def old_compare_table(table, columns):  # pipeline.compare.format_table before the one printer
    widths = [max(len(str(x)) for x in col) for col in zip(columns, *table, strict=True)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)) for row in [columns, *table])


def test_compare_shape_is_kept():
    columns, table = ("kind", "run", "report macro-F1"), [["*tfidf", "tfidf-1", "0.9012"], ["kobert", "k", "0.8"]]
    assert format_table(columns, table) == old_compare_table(table, columns)


def test_label_tables_keep_their_shape():
    rows = [{"source": "ynat", "label": "crime"}, {"source": "ynat", "label": ""}, {"source": "news", "label": "sports"}]
    old_head = f"{'source':<6} " + " ".join(f"{c:>8}" for c in ("politics", "crime", "sports", "business", "other",
                                                                  "none")) + f" {'total':>8}"
    lines = source_table(rows).splitlines()
    assert lines[0] == old_head
    assert lines[2] == f"{'ynat':<6} " + " ".join(f"{n:>8}" for n in (0, 1, 0, 0, 0, 1)) + f" {2:>8}"
    stats = [FunctionStats(name="arrest", label="crime", coverage=0.125, overlap=0.5, conflict=0.0, tune_hits=3,
                           tune_precision=1.0, tune_recall=0.5, accuracy=0.9)]
    assert format_stats(stats).splitlines() == [
        f"{'function':<22} {'label':<9} {'cover':>6} {'overlap':>7} {'confl':>6} {'anno n':>6} "
        f"{'prec':>5} {'recall':>6} {'weight':>6}",
        f"{'arrest':<22} {'crime':<9} {0.125:>6.1%} {0.5:>7.1%} {0.0:>6.1%} {3:>6} {1.0:>5.2f} {0.5:>6.2f} {0.9:>6.2f}"]


def test_promote_table_keeps_its_shape():
    lines = comparison_table(None, None).splitlines()
    assert lines[0] == f"{'':<20} {'candidate':>24} {'champion':>24}"
    assert lines[1] == f"{'model':<20} {'(none)':>24} {'(none)':>24}"


def test_propose_table_lines_up_its_korean_terms():
    from pipeline.propose import Proposal

    proposals = [Proposal(term="살인", n_target=5, n_all=6, n_covered=1, precision=0.83, lift=3.2, examples=["가"]),
                 Proposal(term="ab", n_target=15, n_all=16, n_covered=0, precision=0.94, lift=3.6, examples=["나"])]
    lines = format_proposals(proposals).splitlines()
    assert len({display_width(line[:-1]) for line in lines[1:]}) == 1  # rows end their padded part together
