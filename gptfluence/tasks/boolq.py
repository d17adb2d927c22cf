"""BoolQ-like yes/no questions over a short passage about a river, a town, a person or an animal."""

from __future__ import annotations

import random

from .spec import LABEL_WORDS
from .words import COUNTRIES, OCCUPATIONS, PLACE_HEADS, TOWNS, a_or_an, cap, other, person, words

_W = words("boolq")
SEAS = _W["seas"]
INDUSTRIES = _W["industries"]
ANIMALS = _W["animals"]
ANIMAL_ADJ = _W["animal_adj"]
HABITATS = _W["habitats"]
FOODS = _W["foods"]
WORK_KINDS = _W["work_kinds"]
TITLE_WORDS = _W["title_words"]

# Every BoolQ passage states an entity's facts; every question asks about one closed-class detail (a
# country, a sea, an industry, an occupation, a kind of work, a habitat, a food, day or night) that the
# passage states, naming it (yes) or another value of its class (no), or about having a mayor / a
# prize, which the passage states. Numbers and other towns in the passage are distractors.
def _boolq_river(rng: random.Random) -> tuple[str, str, list, list]:
    name = f"the {rng.choice(PLACE_HEADS)}{rng.choice(('a', 'en', 'is', 'ow', 'ey'))} River"
    country, sea = rng.choice(COUNTRIES), rng.choice(SEAS)
    length, year = rng.randrange(80, 1500, 10), rng.randrange(1600, 1950)
    intro = f"{cap(name)} is a river in {country}."
    facts = [
        (f"It is {length} kilometres long.", None, None),
        (f"It flows into {sea}.", f"does {name} flow into {sea}", f"does {name} flow into {other(rng, SEAS, sea)}"),
        (f"The river was first mapped in {year}.", None, None),
        (f"The town of {rng.choice(TOWNS)} lies on its banks.", None, None),
    ]
    return name, intro, facts, [f"is {name} in {country}", f"is {name} in {other(rng, COUNTRIES, country)}"]


def _boolq_city(rng: random.Random) -> tuple[str, str, list, list]:
    name, country = rng.choice(TOWNS), rng.choice(COUNTRIES)
    pop, year, ind = rng.randrange(2000, 900000, 1000), rng.randrange(900, 1900), rng.choice(INDUSTRIES)
    intro = f"{name} is a town in the north of {country}."
    facts = [
        (f"It has a population of about {pop:,}.", None, None),
        (f"It was founded in {year}.", None, None),
        (f"For centuries the town was known for its {ind}.", f"is {name} known for its {ind}",
         f"is {name} known for its {other(rng, INDUSTRIES, ind)}"),
        (f"The mayor of {name} is {person(rng)}.", f"does {name} have a mayor", f"is {name} without a mayor"),
    ]
    return name, intro, facts, [f"is {name} in {country}", f"is {name} in {other(rng, COUNTRIES, country)}"]


def _boolq_person(rng: random.Random) -> tuple[str, str, list, list]:
    name, occ = person(rng), rng.choice(OCCUPATIONS)
    born, town = rng.randrange(1700, 1960), rng.choice(TOWNS)
    kind, title = rng.choice(WORK_KINDS), rng.choice(TITLE_WORDS)
    last = name.split()[1]
    intro = f"{name} (born {born}) is {a_or_an(occ)} {occ} from {town}."
    other_kind = other(rng, WORK_KINDS, kind)
    facts = [
        (f"{last} is best known for the {kind} {title}.", f"did {name} write {a_or_an(kind)} {kind}",
         f"did {name} write {a_or_an(other_kind)} {other_kind}"),
        (f"{last} grew up in {town} and later moved to {rng.choice(COUNTRIES)}.", None, None),
        (f"{last} received the {rng.choice(TOWNS)} Prize in {born + rng.randrange(25, 60)}.",
         f"did {name} ever receive a prize", f"has {name} never received a prize"),
    ]
    other_occ = other(rng, OCCUPATIONS, occ)
    return name, intro, facts, [f"is {name} {a_or_an(occ)} {occ}", f"is {name} {a_or_an(other_occ)} {other_occ}"]


def _boolq_animal(rng: random.Random) -> tuple[str, str, list, list]:
    name = f"the {rng.choice(ANIMAL_ADJ)} {rng.choice(TOWNS)} {rng.choice(ANIMALS)}"
    hab, food = rng.choice(HABITATS), rng.choice(FOODS)
    size, night = rng.randrange(3, 90), rng.random() < 0.5
    intro = f"{cap(name)} is an animal found in the {hab} of {rng.choice(COUNTRIES)}."
    facts = [
        (f"It feeds mainly on {food}.", f"does {name} eat {food}", f"does {name} eat {other(rng, FOODS, food)}"),
        (f"Adults grow to about {size} centimetres.", None, None),
        (f"It is {'active at night and sleeps during the day' if night else 'active during the day'}.",
         f"is {name} {'active at night' if night else 'active during the day'}",
         f"is {name} {'active during the day' if night else 'active at night'}"),
    ]
    return name, intro, facts, [f"does {name} live in {hab}", f"does {name} live in {other(rng, HABITATS, hab)}"]


_BOOLQ_ENTITIES = (("river", _boolq_river), ("city", _boolq_city), ("person", _boolq_person),
                   ("animal", _boolq_animal))
# Judgement questions: the passage describes the entity with a word of one of two small lexical fields
# (yes field first: the favourable words), the question asks the judgement: the answer follows from that word.
BOOLQ_JUDGEMENTS = {
    "river": (("calm", "gentle", "slow", "navigable"), ("wild", "treacherous", "rocky", "dangerous"),
              "Its waters are {adj}.", "is {name} safe for boats"),
    "city": (("wealthy", "thriving", "prosperous", "booming"), ("poor", "struggling", "declining", "impoverished"),
             "Today the town is {adj}.", "is {name} a rich town"),
    "person": (("celebrated", "acclaimed", "admired", "famous"), ("obscure", "forgotten", "unknown", "neglected"),
               "Today the work of {last} is {adj}.", "is {name} well known today"),
    "animal": (("harmless", "gentle", "shy", "timid"), ("venomous", "aggressive", "fierce", "dangerous"),
               "It is known to be {adj}.", "is {name} harmless to people"),
}
# share of judgement questions; the others ask whether a stated closed-class detail is what the passage says
BOOLQ_JUDGEMENT_SHARE = 0.9


def generate(rng: random.Random, label: int) -> dict:
    """label 1: the answer is yes; 0: no."""
    kind, make = rng.choice(_BOOLQ_ENTITIES)
    name, intro, facts, intro_q = make(rng)
    if rng.random() < BOOLQ_JUDGEMENT_SHARE:  # the judgement closes the passage, after 0-1 other facts
        yes_words, no_words, sentence, question = BOOLQ_JUDGEMENTS[kind]
        adj = rng.choice(yes_words if label == 1 else no_words)
        sentences = [f[0] for f in rng.sample(facts, rng.randint(0, 1))]
        sentences.append(sentence.format(adj=adj, last=name.split()[-1]))
        question = question.format(name=name)
    else:
        keep = rng.sample(facts, rng.randint(1, 2))
        sentences = [f[0] for f in keep]
        candidates = [intro_q] + [f[1:] for f in keep if f[1] is not None]
        yes_q, no_q = rng.choice(candidates)
        question = yes_q if label == 1 else no_q
    passage = " ".join([intro] + sentences)
    return {"passage": passage, "question": question, "label": label, "output": LABEL_WORDS["boolq"][label],
            "keys": [name]}
