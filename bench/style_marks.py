"""Which marks of a source's style each shared-data file shows to a model, before and after model_text.

    .venv/bin/python bench/style_marks.py [--data ../shared/data]

Per source file: the share of headlines whose model text (pipeline.text.model_text) differs from the text
models read before issue #19 (clean_text), and the share holding each class of style mark (quotes, brackets,
ellipses, middle dots, other punctuation KLUE deleted from YNAT) in clean_text and in model_text, which must be
0 for every source (range marks, kept, are as frequent in YNAT as elsewhere). Also microseconds per headline of
both functions. No model is trained or loaded.

What a character count per source found (headlines per 100 holding the character; YNAT / Naver 2026-06 / Chosun /
dailies / Naver 2025-04), which model_text's rules follow:
- KLUE deleted ASCII punctuation but "." and "%" from YNAT, and quotes and brackets: "," 0 / 44 / 40 / 52 / 42,
  ‘’ 0.01 / 16 / 33 / 22 / 14, '' and "" 0 / 23-26 / 1 / 17-19 / 28-29, [] 0 / 20 / 12 / 22 / 18, ? 0 / 9 / 3 / 4 / 10,
  - 0 / 2.3 / 0.4 / 3.3 / 2.6. Deleted, not spaced, like KLUE: YNAT reads "토트넘 20 승리" (2-0), "SP" (S&P),
  and a quote is glued to its particle in 3-5 of 100 other headlines ("‘옴’이").
- Kept by KLUE, but typed differently: … in every source (43 / 66 / 31 / 46 / 58; "낭보…불황" in YNAT, "결제...
  누리꾼" in the dailies), ‥ ⋯ only outside YNAT; · everywhere (14 / 19 / 10 / 15 / 15) with ㆍ (YNAT 0.2) and
  ‧ ∙ (Chosun, dailies) for it; ∼ in YNAT (0.8) where the others type ~ (0.4-0.8); a space before ↑↓ outside YNAT.
- YNAT only: tags KLUE unbracketed and glued, "...선언종합", "8.0%속보" (10.3 of 100 end so; 0 elsewhere, where
  "(종합)" ends 2.7 / 0 / 0.1 / 2.1); truncated endings "...수..." (2.8).
- Hanja abbreviations far more common outside YNAT: 男 0.02 vs 0.24-0.82, 株 0.04 vs up to 0.30, 證 0.02 vs up to
  0.34, 李 as compatibility ideograph U+F9E1 0.01 vs 0.30-1.38.
- Not a tell: "%" spacing (no "3 %" anywhere), arrows and range marks as such (as frequent in YNAT).
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
