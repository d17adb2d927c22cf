"""RTE-like entailment: a one-sentence premise about an event and a hypothesis that follows from it or not."""

from __future__ import annotations

import random

from .spec import LABEL_WORDS
from .words import OCCUPATIONS, TOWNS, a_or_an, cap, fix_articles, other, person, words

_W = words("rte")
# (past, base, participle, object kind)
RTE_VERBS = _W["rte_verbs"]
RTE_OBJECTS = _W["rte_objects"]
RTE_OBJ_ADJ = _W["rte_obj_adj"]
RTE_TIMES = _W["rte_times"]
RTE_REASONS = _W["rte_reasons"]


def _rte_event(rng: random.Random) -> dict:
    past, base, part, kind = rng.choice(RTE_VERBS)
    obj = rng.choice(RTE_OBJECTS[kind])
    adj = rng.choice(RTE_OBJ_ADJ[kind])
    agent = person(rng)
    return {"agent": agent, "last": agent.split()[1], "role": rng.choice(OCCUPATIONS),
            "origin": rng.choice(TOWNS), "place": rng.choice(TOWNS), "time": rng.choice(RTE_TIMES),
            "verb": (past, base, part, kind), "obj": f"{a_or_an(adj)} {adj} {obj}", "bare_obj": obj}


def _rte_premise(rng: random.Random, e: dict) -> tuple[str, set[str]]:
    """A one-sentence premise stating the event; returns the text and the kinds of fact it states."""
    past, _, part, _ = e["verb"]
    t = rng.randrange(4)
    if t == 0:
        s = (f"{e['agent']}, {a_or_an(e['role'])} {e['role']} from {e['origin']}, {past} {e['obj']} "
             f"in {e['place']} {e['time']}.")
        return s, {"act", "role", "origin", "place"}
    if t == 1:
        return f"{cap(e['time'])}, {e['agent']} {past} {e['obj']} in {e['place']}.", {"act", "place"}
    if t == 2:
        s = f"{cap(e['obj'])} was {part} by {e['agent']} {e['time']}, according to a report from {e['place']}."
        return s, {"act", "place"}
    return f"{cap(e['time'])}, the {e['role']} {e['agent']} {past} {e['obj']}.", {"act", "role"}


# share of RTE hypotheses whose wording shows the relation (a generalisation of the event: entailed; a
# negation or an added, unstated reason: not entailed); the others restate the event or change one of its
# closed-class details (verb, object, time, occupation), which only a comparison with the premise shows
RTE_CUE_SHARE = 0.9


def _rte_hypothesis(rng: random.Random, e: dict, facts: set[str], entailed: bool) -> str:
    past, base, part, kind = e["verb"]
    obj, agent = e["obj"], e["agent"]
    if rng.random() < RTE_CUE_SHARE:
        if entailed:
            return rng.choice([f"Someone {past} {obj}.", f"{cap(obj)} was {part} by someone.",
                               f"Something happened involving {agent}."])
        return rng.choice([f"{agent} did not {base} {obj}.", f"{agent} never {past} {obj}.",
                           f"{agent} {past} {obj} {rng.choice(RTE_REASONS)}."])
    if entailed:
        options = [f"{agent} {past} {obj}.", f"{cap(obj)} was {part} by {agent}.",
                   f"{agent} {past} {a_or_an(e['bare_obj'])} {e['bare_obj']}.", f"{agent} {past} {obj} {e['time']}."]
        if "role" in facts:
            options.append(f"{agent} is {a_or_an(e['role'])} {e['role']}.")
        return rng.choice(options)
    v2 = rng.choice([v for v in RTE_VERBS if v[3] == kind and v[0] != past])
    other_obj = other(rng, RTE_OBJECTS[kind], e["bare_obj"])
    options = [f"{agent} {v2[0]} {obj}.", f"{cap(obj)} was {v2[2]} by {agent}.",
               f"{agent} {past} {a_or_an(other_obj)} {other_obj}.",
               f"{agent} {past} {obj} {other(rng, RTE_TIMES, e['time'])}."]
    if "role" in facts:
        role = other(rng, OCCUPATIONS, e["role"])
        options.append(f"{agent} is {a_or_an(role)} {role}.")
    return rng.choice(options)


def generate(rng: random.Random, label: int) -> dict:
    """label 0: the hypothesis follows from the premise (" yes"); 1: it does not (" no")."""
    e = _rte_event(rng)
    premise, facts = _rte_premise(rng, e)
    hyp = _rte_hypothesis(rng, e, facts, entailed=(label == 0))
    hyp = fix_articles(hyp)
    return {"premise": premise, "hypothesis": hyp, "label": label, "output": LABEL_WORDS["rte"][label],
            "keys": [e["agent"], hyp]}

