"""headline-topics: Korean news headlines -> politics / crime / sports / business (or other)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TOPICS = ("politics", "crime", "sports", "business")  # what the classifier answers
OTHER = "other"  # none of the four (LABELING.md); kept identifiable in the labeled data
LABELS = (*TOPICS, OTHER)  # what labeling functions and manual labels may assign
# every bootstrap interval (pipeline.gold's on gold slices, pipeline.summary's batch reference) resamples with
# these: fixed, so the same items get the same interval in every run
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20261129
