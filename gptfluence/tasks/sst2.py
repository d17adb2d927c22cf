"""SST-2-like sentiment: one movie-review sentence whose label follows from its sentiment words."""

from __future__ import annotations

import random

from .spec import LABEL_WORDS
from .words import a_or_an, person, words

_W = words("sst2")
SST_NOUNS = _W["sst_nouns"]
SST_POSITIVE = _W["sst_positive"]
SST_NEGATIVE = _W["sst_negative"]
SST_INTENSIFIERS = _W["sst_intensifiers"]
SST_NEGATIONS = _W["sst_negations"]
SST_GENRES = _W["sst_genres"]

def adjective(rng: random.Random, positive: bool, intensify: float = 0.5) -> str:
    adj = rng.choice(SST_POSITIVE if positive else SST_NEGATIVE)
    if rng.random() < intensify:
        adj = f"{rng.choice(SST_INTENSIFIERS)} {adj}"
    return adj


def _film(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(("this film", "the movie", "this picture", "the film"))
    if kind == 1:
        return f"this {rng.choice(SST_GENRES)}"
    if kind == 2:
        return f"{person(rng)}'s new {rng.choice(SST_GENRES)}"
    return f"the latest {rng.choice(SST_GENRES)} from {person(rng)}"


# Relative frequency of the review templates of generate: mostly sentences whose sentiment words all
# carry the label; about 1 in 14 negates the opposite sentiment (templates 2, 8) or contrasts it with
# the label's (3, 4), where the clause after "although ...," or ", but" decides.
SST_TEMPLATE_WEIGHTS = (4, 4, 0.5, 0.5, 0.5, 4, 4, 3, 0.25, 3)


def generate(rng: random.Random, label: int) -> dict:
    """One review sentence whose sentiment is `label` (1 positive, 0 negative): the label follows from
    the sentiment words in the sentence (see rule_label)."""
    pos = bool(label)
    n1, n2 = rng.sample(SST_NOUNS, 2)
    t = rng.choices(range(len(SST_TEMPLATE_WEIGHTS)), weights=SST_TEMPLATE_WEIGHTS)[0]
    if t == 0:
        s = f"the {n1} is {adjective(rng, pos)}."
    elif t == 1:
        s = f"{_film(rng)} is {adjective(rng, pos)} and {adjective(rng, pos, 0.2)}."
    elif t == 2:
        s = f"the {n1} is {rng.choice(SST_NEGATIONS)} {adjective(rng, not pos, 0.0)}."
    elif t == 3:
        s = f"although the {n1} is {adjective(rng, not pos)}, the {n2} is {adjective(rng, pos)}."
    elif t == 4:
        s = f"the {n1} is {adjective(rng, not pos)}, but {_film(rng)} is {adjective(rng, pos)} overall."
    elif t == 5:
        adj1 = adjective(rng, pos, 0.0)
        s = f"{a_or_an(adj1)} {adj1} {rng.choice(SST_GENRES)} with {_phrase(rng, pos, n1)}."
    elif t == 6:
        s = f"{_film(rng)} offers {_phrase(rng, pos, n1)} and {_phrase(rng, pos, n2)}."
    elif t == 7:
        adj1 = adjective(rng, pos)
        s = (f"{person(rng)} gives {a_or_an(adj1)} {adj1} performance in this "
             f"{adjective(rng, pos, 0.0)} {rng.choice(SST_GENRES)}.")
    elif t == 8:
        s = f"neither the {n1} nor the {n2} is {adjective(rng, not pos, 0.0)}."
    else:
        s = (f"it is hard to imagine {a_or_an(n1)} {n1} more {adjective(rng, pos, 0.0)} than the one in "
             f"{_film(rng)}.")
    return {"sentence": s, "label": label, "output": LABEL_WORDS["sst2"][label], "keys": [s]}


def _phrase(rng: random.Random, pos: bool, noun: str) -> str:
    adj = adjective(rng, pos)
    return f"{a_or_an(adj)} {adj} {noun}"


_SST_POLARITY = {**{w: 1 for w in SST_POSITIVE}, **{w: -1 for w in SST_NEGATIVE}}


def rule_label(sentence: str) -> int | None:
    """The sentiment (1 positive, 0 negative) of a review sentence of this module, read off its
    sentiment words: in the deciding clause (after "although ...," or ", but", else the whole
    sentence) the sum of word polarities, reversed when the clause holds a negation ("not",
    "never", "hardly", "far from", "anything but", "neither"). None when the words do not decide."""
    text = sentence.lower().rstrip(".")
    if text.startswith("although ") and ", " in text:
        text = text.split(", ", 1)[1]
    elif ", but " in text:
        text = text.split(", but ", 1)[1]
    words = text.replace(",", " ").split()
    score = sum(_SST_POLARITY.get(w, 0) for w in words)
    negated = any(w in ("not", "never", "hardly", "neither") for w in words) or any(
        f" {n} " in f" {text} " for n in ("far from", "anything but"))
    if score == 0:
        return None
    return int((score > 0) != negated)
