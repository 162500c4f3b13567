"""Which marks of a source's style each shared-data file shows to a model, before and after model_text.

    .venv/bin/python bench/style_marks.py [--data ../shared/data]

Per source file: the share of headlines whose model text (pipeline.text.model_text) differs from the text
models read before issue #19 (clean_text), and the share holding each class of style mark (quotes, brackets,
ellipses, middle dots, other punctuation KLUE deleted from YNAT) in clean_text and in model_text, which must be
0 for every source (range marks, kept, are as frequent in YNAT as elsewhere). Also microseconds per headline of
both functions. No model is trained or loaded.
"""

import argparse
import csv
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import REPO_ROOT  # noqa: E402
from pipeline.text import clean_text, model_text  # noqa: E402

FILES = {
    "ynat": "ynat/ynat_train.csv",
    "naver 2026-06": "listings/naver_sections_2026-06-05.csv",
    "chosun": "sources/chosun_society_2024-05_2026-06.csv",
    "dailies 2026-02": "sources/economic_dailies_2026-02.csv",
    "naver 2025-04": "sources/naver_sections_2025-04-16.csv",
}
MARKS = {
    "quote": "‘’“”'\"„‟‚‛«»「」『』′″`",
    "bracket": "[](){}<>【】〔〕［］〈〉《》",
    "ellipsis": "…⋯‥",
    "middle dot": "·ㆍ\u119e・‧∙•⋅",
    "other punct": ",?!:;/-–—&#*@+=|",
    "range ~ (kept)": "~∼〜",  # a mark of content (13~15도), made one glyph; every source has it
}
CLASSES = {name: re.compile(f"[{re.escape(chars)}]|\\.\\.") for name, chars in MARKS.items()}
CLASSES["ellipsis"] = re.compile(r"[…⋯‥]|\.\.")  # "..." is an ellipsis too; a lone "." may be a decimal point


def share(texts: list[str], rx: re.Pattern) -> float:
    return 100 * sum(bool(rx.search(t)) for t in texts) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    header = ["source", "rows", "model≠clean %", *(f"{c} % (clean→model)" for c in CLASSES)]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    spent = {"clean_text": 0.0, "model_text": 0.0}
    total = 0
    for source, rel in FILES.items():
        with (args.data / rel).open(encoding="utf-8", newline="") as fh:
            titles = [r["title"] for r in csv.DictReader(fh)]
        start = time.perf_counter()
        before = [clean_text(t) for t in titles]
        spent["clean_text"] += time.perf_counter() - start
        start = time.perf_counter()
        after = [model_text(t) for t in titles]
        spent["model_text"] += time.perf_counter() - start
        total += len(titles)
        differ = 100 * sum(a != b for a, b in zip(before, after, strict=True)) / len(titles)
        cells = [f"{share(before, rx):.2f} → {share(after, rx):.2f}" for rx in CLASSES.values()]
        print(f"| {source} | {len(titles):,} | {differ:.1f} | " + " | ".join(cells) + " |")
    print("\n" + ", ".join(f"{name} {1e6 * s / total:.1f} µs/headline" for name, s in spent.items()))


if __name__ == "__main__":
    main()
