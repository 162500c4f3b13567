"""headline-topics: Korean news headlines -> politics / crime / sports / business."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TOPICS = ("politics", "crime", "sports", "business")
