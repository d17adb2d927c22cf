"""WMT16 de-en-like translation: a small German-like source language -> English (word by word plus
reordering rules: the perfect's participle last, adverb placement, verb-subject inversion, verb-final
subordinate clauses)."""

from __future__ import annotations

import random

from .words import a_or_an, cap, words

_W = words("wmt16_de_en")
# German noun, gender (m/f/n), English
DE_AGENTS = _W["de_agents"]
DE_OBJECTS = _W["de_objects"]
# German 3rd singular, participle, English 3rd singular, English participle, object kinds
DE_VERBS = _W["de_verbs"]
DE_ADJECTIVES = _W["de_adjectives"]
DE_TIME = _W["de_time"]
DE_FREQ = _W["de_freq"]
DE_PLACES = _W["de_places"]

_DE_DEF = {("nom", "m"): "der", ("nom", "f"): "die", ("nom", "n"): "das",
           ("acc", "m"): "den", ("acc", "f"): "die", ("acc", "n"): "das"}
_DE_INDEF = {("nom", "m"): "ein", ("nom", "f"): "eine", ("nom", "n"): "ein",
             ("acc", "m"): "einen", ("acc", "f"): "eine", ("acc", "n"): "ein"}
# adjective endings after the definite / indefinite article
_DE_ADJ_DEF = {("nom", "m"): "e", ("nom", "f"): "e", ("nom", "n"): "e",
               ("acc", "m"): "en", ("acc", "f"): "e", ("acc", "n"): "e"}
_DE_ADJ_INDEF = {("nom", "m"): "er", ("nom", "f"): "e", ("nom", "n"): "es",
                 ("acc", "m"): "en", ("acc", "f"): "e", ("acc", "n"): "es"}


def _de_np(rng: random.Random, noun: tuple, case: str, max_adj: int = 2) -> tuple[str, str]:
    """A noun phrase in the source language (article + inflected adjectives + noun) and in English."""
    de_noun, gender, en_noun = noun
    definite = rng.random() < 0.6
    adjs = rng.sample(DE_ADJECTIVES, min(max_adj, rng.choice((0, 0, 1, 1, 2))))
    art = (_DE_DEF if definite else _DE_INDEF)[(case, gender)]
    ending = (_DE_ADJ_DEF if definite else _DE_ADJ_INDEF)[(case, gender)]
    de_adj = [a[0][:-1] + ending if a[0].endswith("e") else a[0] + ending for a in adjs]
    en_words = [a[1] for a in adjs] + [en_noun]
    en_art = "the" if definite else a_or_an(en_words[0])
    return " ".join([art] + de_adj + [de_noun]), " ".join([en_art] + en_words)


def _de_clause(rng: random.Random, allow_inversion: bool = True) -> tuple[str, str]:
    """One main clause (source, English), lower-case, without final punctuation."""
    v = rng.choice(DE_VERBS)
    kind = rng.choice(v[4].split())
    subj = _de_np(rng, rng.choice(DE_AGENTS), "nom")
    obj = _de_np(rng, rng.choice(DE_OBJECTS[kind]), "acc")
    place = rng.choice(DE_PLACES) if rng.random() < 0.35 else None
    form = rng.randrange(4 if allow_inversion else 3)
    if form == 0:  # S V O: word by word
        de, en = [subj[0], v[0], obj[0]], [subj[1], v[2], obj[1]]
    elif form == 1:  # perfect: participle moves to the end in the source
        f = rng.choice(DE_FREQ) if rng.random() < 0.4 else None
        de = [subj[0], "hat", obj[0]] + ([f[0]] if f else []) + ([place[0]] if place else []) + [v[1]]
        en = [subj[1], "has"] + ([f[1]] if f else []) + [v[3], obj[1]] + ([place[1]] if place else [])
        place = None  # already placed (before the participle in the source)
    elif form == 2:  # frequency adverb after the verb in the source, before it in English
        f = rng.choice(DE_FREQ)
        de, en = [subj[0], v[0], f[0], obj[0]], [subj[1], f[1], v[2], obj[1]]
    else:  # time adverb first: verb-subject inversion in the source
        t = rng.choice(DE_TIME)
        de, en = [t[0], v[0], subj[0], obj[0]], [t[1], subj[1], v[2], obj[1]]
    if place:
        de.append(place[0])
        en.append(place[1])
    return " ".join(de), " ".join(en)


def generate(rng: random.Random, label=None) -> dict:
    form = rng.randrange(5)
    de, en = _de_clause(rng)
    if form == 3:  # subordinate clause: verb-final in the source
        subj = _de_np(rng, rng.choice(DE_AGENTS), "nom", max_adj=0)
        adj = rng.choice(DE_ADJECTIVES)
        de, en = f"{de}, weil {subj[0]} {adj[0]} ist", f"{en} because {subj[1]} is {adj[1]}"
    elif form == 4:  # two coordinated clauses
        de2, en2 = _de_clause(rng, allow_inversion=False)
        de, en = f"{de} und {de2}", f"{en} and {en2}"
    return {"source": cap(de) + ".", "output": cap(en) + ".", "keys": [cap(de) + "."]}
