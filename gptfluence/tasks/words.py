"""Word lists of the built-in tasks (data/<name>.json) and the small text helpers every generator uses.

The lists live in JSON files beside this package, one per task type plus "common" (names, towns,
countries, occupations, months) and "corpus"; words(name) returns a file's lists as tuples (nested
lists as nested tuples), so a generator's random choices depend only on the data and its seed.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Sequence

DATA_DIR = Path(__file__).with_name("data")


def _frozen(value):
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


@functools.cache
def words(name: str) -> dict:
    """The word lists of data/<name>.json: {list name: tuple of words (or of tuples)}."""
    with open(DATA_DIR / f"{name}.json", encoding="utf-8") as f:
        return _frozen(json.load(f))


_COMMON = words("common")
FIRST_NAMES = _COMMON["first_names"]
LAST_NAMES = _COMMON["last_names"]
PLACE_HEADS = _COMMON["place_heads"]
# 375 made-up town names, e.g. "Ashford", "Valmouth"
TOWNS = tuple(h + t for h in PLACE_HEADS for t in _COMMON["place_tails"])
COUNTRIES = _COMMON["countries"]
OCCUPATIONS = _COMMON["occupations"]
MONTHS = _COMMON["months"]


def a_or_an(word: str) -> str:
    """'a' or 'an' before `word`."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def other(rng: random.Random, pool: Sequence[str], not_this: str) -> str:
    """A random member of `pool` other than `not_this`."""
    while True:
        x = rng.choice(pool)
        if x != not_this:
            return x


def fix_articles(text: str) -> str:
    """Make every standalone 'a'/'an' agree with the next word."""
    parts = text.split(" ")
    for i in range(len(parts) - 1):
        if parts[i].lower() in ("a", "an"):
            art = a_or_an(parts[i + 1])
            parts[i] = cap(art) if parts[i][0].isupper() else art
    return " ".join(parts)
