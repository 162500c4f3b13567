"""The one plain-text table printer of the commands (compare, promote, label, propose).

Columns are padded by display width, not by characters: Hangul (and other wide characters) takes two
terminal columns, so a column of Korean titles or source names lines up with its header. Markdown tables
(pipeline.card) need no padding and are not made here.
"""

import unicodedata
from collections.abc import Sequence


def display_width(text: str) -> int:
    """Terminal columns `text` takes: two for a wide or full-width character (Hangul, CJK), else one."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


def format_table(header: Sequence[object], rows: Sequence[Sequence[object]], right: Sequence[bool] = (),
                 gap: str = "  ", min_widths: Sequence[int] = (), ragged_last: bool = False) -> str:
    """Header and rows, one line each. `right[i]`: column i is right-aligned (default left); `min_widths[i]`:
    its least width; `ragged_last`: the last column is not padded (long example headlines)."""
    table = [[str(c) for c in row] for row in [header, *rows]]
    n = len(table[0])
    widths = [max([display_width(row[i]) for row in table] + [min_widths[i] if i < len(min_widths) else 0])
              for i in range(n)]
    lines = []
    for row in table:
        cells = [pad(c, w, i < len(right) and right[i]) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        if ragged_last:
            cells[-1] = row[-1]
        lines.append(gap.join(cells))
    return "\n".join(lines)
