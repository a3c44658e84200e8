"""Minimum scores per label ("person=0.4"): parsing and the rule that applies them."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping


def parse_label_min_score(line: str) -> tuple[str, float]:
    """``"person=0.4"`` -> ``("person", 0.4)``; ValueError saying what is wrong."""
    label, sep, value = line.partition("=")
    label = " ".join(label.split()).lower()
    if not sep or not label:
        raise ValueError(f"{line!r}: write label=score, for example person=0.4")
    try:
        score = float(value)
    except ValueError:
        raise ValueError(f"{line!r}: {value.strip()!r} is not a number") from None
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"{line!r}: the score must be between 0 and 1")
    return label, score


def parse_label_min_scores(lines: Iterable[str]) -> dict[str, float]:
    """The registry's lines as a mapping; blank lines are ignored."""
    return dict(parse_label_min_score(line) for line in lines if line.strip())


def min_score_for(
    label: str, min_score: float, per_label: Mapping[str, float]
) -> float:
    """The minimum score at which ``label`` is indexed: its own, else the global."""
    return per_label.get(label, min_score)
