"""Suggestions for a misspelled name: the closest of the names that exist."""

import difflib
from typing import Iterable, List


def closest_names(name: str, candidates: Iterable[str], count: int = 3) -> List[str]:
    """Up to ``count`` of ``candidates`` closest to ``name`` (case-insensitive; difflib's ratio, cut-off 0.6), best
    first."""
    by_lower = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=count, cutoff=0.6)]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` Did you mean A, B?`` (empty when nothing is close)."""
    close = closest_names(name, candidates)
    return f" Did you mean {', '.join(close)}?" if close else ""
