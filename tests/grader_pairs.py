"""Shared helper for the grader's labelled-pair tests: ``{category: [(a, b), ...]}`` -> pytest params."""

import pytest


def pair_params(table: dict[str, list[tuple[str, str]]]) -> list:
    """One ``pytest.param(a, b)`` per pair, with an id naming its category and both sides."""
    return [pytest.param(a, b, id=f"{cat}:{a}|{b}") for cat, pairs in table.items() for a, b in pairs]
