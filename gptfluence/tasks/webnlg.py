"""WebNLG-like data-to-text: 1-3 subject | relation | object triples and a sentence verbalising them."""

from __future__ import annotations

import random

from .words import COUNTRIES, MONTHS, OCCUPATIONS, TOWNS, a_or_an, cap, person, words

_W = words("webnlg")
UNIVERSITIES = tuple(f"University of {t}" for t in TOWNS[::15])
COMPANIES = tuple(f"{h}{s}" for h in ("Nord", "Vel", "Astra", "Brim", "Cobalt", "Duna", "Fenn", "Halo")
                  for s in (" Industries", " Foods", " Motors", " Systems", " Airlines"))
DISHES = _W["dishes"]
INGREDIENTS = _W["ingredients"]
COURSES = _W["courses"]
AWARDS = _W["awards"]

def _wn_literal(rng: random.Random, kind: str) -> tuple[str, str]:
    """(value as written in a triple, value as written in text) for a literal kind."""
    if kind == "year":
        y = str(rng.randrange(1850, 2020))
        return y, y
    if kind == "date":
        y, m, d = rng.randrange(1900, 2000), rng.randrange(1, 13), rng.randrange(1, 29)
        return f'"{y}-{m:02d}-{d:02d}"', f"{d} {MONTHS[m - 1]} {y}"
    if kind == "count":
        n = rng.randrange(2, 90)
        return str(n), str(n)
    if kind == "population":
        n = rng.randrange(5000, 2000000, 100)
        return str(n), f"{n:,}"
    raise ValueError(kind)


# entity type -> relation -> (object type, text templates with {s} and {o})
WEBNLG_SCHEMA = {
    "person": {
        "birthPlace": ("town", ("{s} was born in {o}", "{s} is a native of {o}")),
        "birthDate": ("date", ("{s} was born on {o}",)),
        "occupation": ("occupation", ("{s} worked as {a_o}", "{s} is {a_o} by profession")),
        "almaMater": ("university", ("{s} studied at the {o}", "{s} graduated from the {o}")),
        "nationality": ("country", ("{s} is a citizen of {o}", "{s} holds {o} nationality")),
        "award": ("award", ("{s} won the {o}", "{s} received the {o}")),
    },
    "town": {
        "country": ("country", ("{s} is located in {o}", "{s} is a town in {o}")),
        "populationTotal": ("population", ("{s} has a population of {o}", "{o} people live in {s}")),
        "leaderName": ("person", ("{s} is led by {o}", "the leader of {s} is {o}")),
        "foundingYear": ("year", ("{s} was founded in {o}",)),
    },
    "company": {
        "location": ("town", ("{s} is based in {o}", "{s} has its headquarters in {o}")),
        "foundingYear": ("year", ("{s} was founded in {o}", "{s} was established in {o}")),
        "keyPerson": ("person", ("{o} is a key person at {s}", "{s} is run by {o}")),
        "numberOfEmployees": ("count", ("{s} employs {o} people", "{s} has {o} employees")),
    },
    "dish": {
        "country": ("country", ("{s} is a dish from {o}", "{s} comes from {o}")),
        "ingredient": ("ingredient", ("{s} is made with {o}", "{o} is an ingredient of {s}")),
        "course": ("course", ("{s} is served as {a_o}", "{s} is eaten as {a_o}")),
        "creator": ("person", ("{s} was created by {o}",)),
    },
}
_WN_POOLS = {"town": TOWNS, "country": COUNTRIES, "occupation": OCCUPATIONS, "university": UNIVERSITIES,
             "award": AWARDS, "company": COMPANIES, "dish": DISHES, "ingredient": INGREDIENTS,
             "course": COURSES}


def _wn_entity(rng: random.Random, kind: str) -> tuple[str, str]:
    """(triple form, text form) of a named entity of `kind`."""
    text = person(rng) if kind == "person" else rng.choice(_WN_POOLS[kind])
    return text.replace(" ", "_"), text


def _wn_value(rng: random.Random, kind: str) -> tuple[str, str]:
    if kind in ("year", "date", "count", "population"):
        return _wn_literal(rng, kind)
    return _wn_entity(rng, kind)


def _wn_clause(rng: random.Random, rel_spec: tuple, s_text: str, o_text: str, pronoun: str | None = None) -> str:
    """One clause verbalising a triple; `pronoun` replaces the subject when the template starts with it."""
    tmpl = rng.choice(rel_spec[1])
    if pronoun and tmpl.startswith("{s}"):
        s_text = pronoun
    return tmpl.format(s=s_text, o=o_text, a_o=f"{a_or_an(o_text)} {o_text}")


def generate(rng: random.Random, label=None) -> dict:
    """1-3 triples about one subject (a second subject when a triple's object is described further)."""
    kind = rng.choice(tuple(WEBNLG_SCHEMA))
    subj = _wn_entity(rng, kind)
    n = rng.choice((1, 1, 2, 2, 3, 3, 3))
    rels = rng.sample(tuple(WEBNLG_SCHEMA[kind]), min(n, len(WEBNLG_SCHEMA[kind])))
    triples, clauses = [], []
    for rel in rels:
        spec = WEBNLG_SCHEMA[kind][rel]
        obj = _wn_value(rng, spec[0])
        triples.append(f"{subj[0]} | {rel} | {obj[0]}")
        clauses.append((spec, obj))
    # first clause names the subject; later ones for the same subject are joined with "and"
    parts = [_wn_clause(rng, clauses[0][0], subj[1], clauses[0][1][1])]
    for spec, obj in clauses[1:]:
        pronoun = ("they" if kind == "person" else "it") if rng.random() < 0.5 else None
        parts.append(_wn_clause(rng, spec, subj[1], obj[1], pronoun))
    sentences = [_join_clauses(parts)]
    # chain: describe the first object further if it is itself an entity with relations
    obj_kind = clauses[0][0][0]
    if len(triples) < 3 and obj_kind in WEBNLG_SCHEMA and rng.random() < 0.6:
        rel2 = rng.choice(tuple(WEBNLG_SCHEMA[obj_kind]))
        spec2 = WEBNLG_SCHEMA[obj_kind][rel2]
        obj2 = _wn_value(rng, spec2[0])
        triples.append(f"{clauses[0][1][0]} | {rel2} | {obj2[0]}")
        sentences.append(cap(_wn_clause(rng, spec2, clauses[0][1][1], obj2[1])) + ".")
    text = " ".join(sentences).replace(" they is ", " they are ").replace(" they was ", " they were ")
    text = text.replace(" they has ", " they have ").replace(" they holds ", " they hold ")
    return {"triples": triples, "output": text, "keys": sorted({t.split(" | ")[0] for t in triples})}


def _join_clauses(parts: list[str]) -> str:
    if len(parts) == 1:
        body = parts[0]
    else:
        body = ", ".join(parts[:-1]) + " and " + parts[-1]
    return cap(body) + "."
