"""headline-topics: Korean news headlines -> politics / crime / sports / business (or other)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TOPICS = ("politics", "crime", "sports", "business")  # what the classifier answers
OTHER = "other"  # none of the four (LABELING.md); kept identifiable in the labeled data
LABELS = (*TOPICS, OTHER)  # what labeling functions and manual labels may assign
