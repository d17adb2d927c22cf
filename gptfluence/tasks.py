"""Task sample files: built-in generators for the paper's five task types, and importers.

A sample is a dict (one JSON line of a task sample file, see gptfluence.io.load_samples):

    {"id": 0,                      position in its file, 0..N-1
     "input": prompt + target,     the full training text
     "context": prompt,            a prefix of input; input[len(context):] is the target
     "target": " positive",        the target exactly as it appears in input (leading space)
     "output": "positive",         the target without leading space
     "task": "sst2",
     ... per-task content fields (sentence / premise, hypothesis / passage, question /
         triples / source) and, for classification tasks, "label" (int, GLUE convention)
         and "clean_label" (the label before any injected label noise)}

Built-in tasks (deterministic by seed; written for this project, no outside data):
    sst2         movie-review sentiment, target " positive" / " negative"
    rte          premise / hypothesis entailment, target " yes" / " no"
    boolq        yes/no question over a short passage, target " yes" / " no"
    webnlg       1-3 subject | relation | object triples -> a sentence
    wmt16_de_en  a small German-like source language -> English, word-by-word plus reordering rules

Real data: import_hf (datasets.load_dataset, needs the hub) and import_local (csv / tsv /
JSON-lines files with named columns) convert rows through the same per-task converter.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import zlib
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from .formats import FLAN_TEST_OFFSETS
from .io import DataError

logger = logging.getLogger(__name__)

TASKS = ("sst2", "rte", "boolq", "webnlg", "wmt16_de_en")
# Test-set sizes of the paper (FLAN eval = the five concatenated = 1055 examples).
PAPER_TEST_SIZES = {"sst2": 200, "rte": 277, "boolq": 200, "webnlg": 178, "wmt16_de_en": 200}
DEFAULT_N_TRAIN = 200
FLAN_N_TRAIN = 1600
CLASSIFICATION_TASKS = ("sst2", "rte", "boolq")
# label (int, GLUE / SuperGLUE convention) -> answer word
LABEL_WORDS = {"sst2": ("negative", "positive"), "rte": ("yes", "no"), "boolq": ("no", "yes")}


# ----------------------------------------------------------------------------------------------
# Shared vocabulary
# ----------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Anna Ben Clara David Elena Felix Greta Hugo Ida Jonas Karla Leo Maria Nils Olga Paul Rosa Simon "
    "Tara Umar Vera Walter Yusuf Zoe Amir Bianca Carlos Dana Emil Fatima Georg Hana Ivan Julia Kofi "
    "Lena Marco Nora Oscar Priya Quentin Rita Samuel Tomas Ursula Victor Wanda Xavier Yara Adam Beatrice "
    "Conrad Delia Erik Flora Gustav Helena Isaac Jasmin Kurt Lisa Martin Nadia Otto Petra"
).split()
LAST_NAMES = (
    "Albers Brandt Costa Dahl Eckert Fischer Garcia Hansen Ibsen Jansen Keller Lindqvist Moreau Novak "
    "Olsen Petrov Quinn Reyes Schulz Tanaka Umbach Varga Weber Young Zeller Bauer Castro Diaz Engel "
    "Ferreira Graham Holm Ito Jovanovic Kowalski Lang Meyer Nakamura Ortiz Park Rossi Sato Torres "
    "Vogel Walsh Yilmaz Arnold Berg Conti Dumas Evans Falk Gruber Hale Ivers Jaeger Klein Lorenz"
).split()
_PLACE_HEADS = ("Ash Bel Cor Dun Elm Fal Gran Hol Ist Kel Lor Mar Nor Oak Pen Quar Ros Sil Tor Val "
                "Wend Bram Cald Eld Fenn").split()
_PLACE_TAILS = "ford burg ton wick dale mouth field haven stead port ham bury mere vale stone".split()
# 375 made-up town names, e.g. "Ashford", "Valmouth"
TOWNS = tuple(h + t for h in _PLACE_HEADS for t in _PLACE_TAILS)
COUNTRIES = ("Castoria Veldania Morland Ostrevia Brisca Tallinor Aravia Norvania Selmark Quarenta Dalmoria "
             "Feronia Galdor Istrella Lunaria Perevia Rhovan Sundaria Tervania Ulmoria").split()
OCCUPATIONS = ("doctor teacher engineer farmer lawyer pilot journalist painter nurse scientist architect chef "
               "singer writer banker professor carpenter photographer mechanic librarian pharmacist "
               "composer sculptor economist dentist baker tailor poet historian diplomat").split()


def _a(word: str) -> str:
    """'a' or 'an' before `word`."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


# ----------------------------------------------------------------------------------------------
# SST-2-like sentiment
# ----------------------------------------------------------------------------------------------

_SST_NOUN_WORDS = (
    "film movie picture story plot script screenplay cast acting performance direction dialogue "
    "soundtrack score cinematography editing ending opening finale pacing humor premise narrative "
    "villain hero debut sequel remake documentary comedy drama thriller romance musical animation "
    "camera work production design set design ensemble storytelling tone atmosphere message satire "
    "chemistry climax twist first act second half lead performance supporting cast central idea "
    "voice work lighting costume design sound design choreography photography characterization "
    "world building screenwriting adaptation final scene premise"
).split(" ")
# multi-word nouns are written with spaces above; regroup them
_SST_MULTI = {"camera work", "production design", "set design", "first act", "second half",
              "lead performance", "supporting cast", "central idea", "voice work", "costume design",
              "sound design", "world building", "final scene"}


def _regroup(words: Sequence[str], multi: set[str]) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(words):
        pair = " ".join(words[i:i + 2])
        if pair in multi:
            out.append(pair)
            i += 2
        else:
            out.append(words[i])
            i += 1
    return tuple(dict.fromkeys(out))


SST_NOUNS = _regroup(_SST_NOUN_WORDS, _SST_MULTI)
SST_POSITIVE = tuple(dict.fromkeys((
    "wonderful brilliant charming delightful moving gripping engaging clever witty funny hilarious "
    "beautiful stunning gorgeous heartfelt touching powerful compelling fresh original inventive smart "
    "thoughtful warm tender lovely memorable remarkable superb excellent terrific fantastic marvelous "
    "masterful polished elegant graceful vibrant lively energetic thrilling exciting suspenseful riveting "
    "absorbing fascinating intriguing entertaining enjoyable satisfying rewarding uplifting inspiring "
    "joyful sweet tight sharp crisp assured confident ambitious bold daring sincere honest genuine "
    "authentic rich lush luminous haunting poignant profound insightful intelligent sophisticated subtle "
    "nuanced layered rousing spirited playful breezy refreshing irresistible captivating enchanting "
    "magical dazzling spectacular impressive accomplished skillful winning likable solid strong effective "
    "affecting wise"
).split()))
SST_NEGATIVE = tuple(dict.fromkeys((
    "boring dull tedious bland flat lifeless clumsy awkward messy sloppy muddled confusing incoherent "
    "pointless shallow hollow empty predictable formulaic derivative stale tired trite silly stupid dumb "
    "lazy sluggish overlong bloated plodding dreary grating annoying irritating unfunny lame weak thin "
    "forgettable mediocre uninspired unoriginal painful dreadful awful terrible horrible atrocious abysmal "
    "disappointing frustrating pretentious self-indulgent smug cynical mean-spirited heavy-handed "
    "manipulative cheap shoddy amateurish wooden stiff soulless joyless humorless charmless listless "
    "aimless disjointed choppy ugly murky shrill obnoxious tiresome exhausting numbing insipid vapid "
    "banal hackneyed contrived implausible ridiculous laughable embarrassing forced strained labored "
    "overwrought overdone underwritten half-baked misguided misjudged unpleasant sour dismal pedestrian "
    "generic sterile lethargic limp feeble"
).split()))
SST_INTENSIFIERS = (
    "very really truly quite remarkably genuinely utterly thoroughly deeply incredibly extremely "
    "surprisingly consistently downright absolutely simply completely entirely rather fairly decidedly "
    "undeniably frankly strikingly unusually"
).split()
SST_NEGATIONS = ("not", "never", "hardly", "far from", "anything but", "not exactly", "not at all")
SST_GENRES = ("comedy drama thriller western romance documentary musical satire melodrama biopic mystery "
              "fantasy adventure tragedy farce fable").split() + [
    "horror film", "war film", "crime story", "family film", "science fiction film", "animated feature",
    "period piece", "road movie", "coming-of-age story", "courtroom drama", "spy thriller", "love story"]


def _sst_adj(rng: random.Random, positive: bool, intensify: float = 0.5) -> str:
    adj = rng.choice(SST_POSITIVE if positive else SST_NEGATIVE)
    if rng.random() < intensify:
        adj = f"{rng.choice(SST_INTENSIFIERS)} {adj}"
    return adj


def _sst_film(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(("this film", "the movie", "this picture", "the film"))
    if kind == 1:
        return f"this {rng.choice(SST_GENRES)}"
    if kind == 2:
        return f"{_person(rng)}'s new {rng.choice(SST_GENRES)}"
    return f"the latest {rng.choice(SST_GENRES)} from {_person(rng)}"


def _gen_sst2(rng: random.Random, label: int) -> dict:
    """One review sentence whose sentiment is `label` (1 positive, 0 negative)."""
    pos = bool(label)
    n1, n2 = rng.sample(SST_NOUNS, 2)
    t = rng.randrange(10)
    if t == 0:
        s = f"the {n1} is {_sst_adj(rng, pos)}."
    elif t == 1:
        s = f"{_sst_film(rng)} is {_sst_adj(rng, pos)} and {_sst_adj(rng, pos, 0.2)}."
    elif t == 2:
        s = f"the {n1} is {rng.choice(SST_NEGATIONS)} {_sst_adj(rng, not pos, 0.0)}."
    elif t == 3:
        s = f"although the {n1} is {_sst_adj(rng, not pos)}, the {n2} is {_sst_adj(rng, pos)}."
    elif t == 4:
        s = f"the {n1} is {_sst_adj(rng, not pos)}, but {_sst_film(rng)} is {_sst_adj(rng, pos)} overall."
    elif t == 5:
        adj1 = _sst_adj(rng, pos, 0.0)
        s = f"{_a(adj1)} {adj1} {rng.choice(SST_GENRES)} with {_sst_phrase(rng, pos, n1)}."
    elif t == 6:
        s = f"{_sst_film(rng)} offers {_sst_phrase(rng, pos, n1)} and {_sst_phrase(rng, pos, n2)}."
    elif t == 7:
        adj1 = _sst_adj(rng, pos)
        s = (f"{_person(rng)} gives {_a(adj1)} {adj1} performance in this "
             f"{_sst_adj(rng, pos, 0.0)} {rng.choice(SST_GENRES)}.")
    elif t == 8:
        s = f"neither the {n1} nor the {n2} is {_sst_adj(rng, not pos, 0.0)}."
    else:
        s = (f"it is hard to imagine {_a(n1)} {n1} more {_sst_adj(rng, pos, 0.0)} than the one in "
             f"{_sst_film(rng)}.")
    return {"sentence": s, "label": label, "output": LABEL_WORDS["sst2"][label]}


def _sst_phrase(rng: random.Random, pos: bool, noun: str) -> str:
    adj = _sst_adj(rng, pos)
    return f"{_a(adj)} {adj} {noun}"


# ----------------------------------------------------------------------------------------------
# RTE-like entailment
# ----------------------------------------------------------------------------------------------

# (past, base, participle, object kind)
RTE_VERBS = (
    ("bought", "buy", "bought", "thing"), ("sold", "sell", "sold", "thing"),
    ("repaired", "repair", "repaired", "thing"), ("painted", "paint", "painted", "thing"),
    ("found", "find", "found", "thing"), ("stole", "steal", "stolen", "thing"),
    ("opened", "open", "opened", "venue"), ("closed", "close", "closed", "venue"),
    ("visited", "visit", "visited", "venue"), ("built", "build", "built", "venue"),
    ("designed", "design", "designed", "venue"), ("founded", "found", "founded", "org"),
    ("joined", "join", "joined", "org"), ("left", "leave", "left", "org"), ("led", "lead", "led", "org"),
    ("wrote", "write", "written", "text"), ("published", "publish", "published", "text"),
    ("read", "read", "read", "text"), ("signed", "sign", "signed", "text"),
    ("won", "win", "won", "prize"), ("received", "receive", "received", "prize"),
    ("announced", "announce", "announced", "plan"), ("rejected", "reject", "rejected", "plan"),
    ("approved", "approve", "approved", "plan"), ("proposed", "propose", "proposed", "plan"),
)
RTE_OBJECTS = {
    "thing": "car boat bicycle painting piano violin watch camera tractor lamp clock sculpture carpet".split(),
    "venue": "bakery museum library hospital school bridge theatre hotel restaurant factory stadium".split(),
    "org": "company union charity orchestra football club research institute newspaper bank".split(),
    "text": "book letter report contract novel article petition treaty".split(),
    "prize": "medal award prize trophy scholarship".split(),
    "plan": "budget proposal plan reform law".split(),
}
RTE_OBJ_ADJ = {
    "thing": "new old small large famous expensive modern rare antique red".split(),
    "venue": "new old small large famous modern historic local private public".split(),
    "org": "small large famous local private public regional national".split(),
    "text": "long short famous controversial secret new detailed".split(),
    "prize": "national international regional special gold".split(),
    "plan": "new controversial ambitious national local modest".split(),
}
RTE_TIMES = ("on Monday", "on Tuesday", "on Friday", "last week", "last year", "in March", "in June",
             "in October", "in 1998", "in 2004", "in 2011", "in 2017", "yesterday", "two years ago")


def _rte_event(rng: random.Random) -> dict:
    past, base, part, kind = rng.choice(RTE_VERBS)
    obj = rng.choice(RTE_OBJECTS[kind])
    adj = rng.choice(RTE_OBJ_ADJ[kind])
    agent = _person(rng)
    return {"agent": agent, "last": agent.split()[1], "role": rng.choice(OCCUPATIONS),
            "origin": rng.choice(TOWNS), "place": rng.choice(TOWNS), "time": rng.choice(RTE_TIMES),
            "verb": (past, base, part, kind), "obj": f"{_a(adj)} {adj} {obj}", "bare_obj": obj}


def _rte_premise(rng: random.Random, e: dict) -> tuple[str, set[str]]:
    """A premise stating the event; returns the text and the kinds of fact it states."""
    past, _, part, _ = e["verb"]
    t = rng.randrange(4)
    if t == 0:
        s = (f"{e['agent']}, {_a(e['role'])} {e['role']} from {e['origin']}, {past} {e['obj']} "
             f"in {e['place']} {e['time']}.")
        return s, {"act", "role", "origin", "place"}
    if t == 1:
        s = (f"{_cap(e['time'])}, {e['agent']} {past} {e['obj']} in {e['place']}. "
             f"The {e['role']} told reporters that it had been a long day.")
        return s, {"act", "role", "place"}
    if t == 2:
        s = (f"{_cap(e['obj'])} was {part} by {e['agent']} {e['time']}, according to a report from "
             f"{e['place']}. {e['last']} was born in {e['origin']}.")
        return s, {"act", "origin"}
    s = (f"{e['agent']} has worked as {_a(e['role'])} {e['role']} in {e['place']} for years. "
         f"{_cap(e['time'])}, {e['last']} {past} {e['obj']}.")
    return s, {"act", "role", "place"}


def _other(rng: random.Random, pool: Sequence[str], not_this: str) -> str:
    while True:
        x = rng.choice(pool)
        if x != not_this:
            return x


def _rte_hypothesis(rng: random.Random, e: dict, facts: set[str], entailed: bool) -> str:
    past, base, part, kind = e["verb"]
    obj = e["obj"]
    if entailed:
        options = [f"{e['agent']} {past} {obj}.", f"{_cap(obj)} was {part} by {e['agent']}.",
                   f"{e['agent']} {past} {_a(e['bare_obj'])} {e['bare_obj']}."]
        if "role" in facts:
            options.append(f"{e['agent']} is {_a(e['role'])} {e['role']}.")
        if "origin" in facts:
            options.append(f"{e['agent']} comes from {e['origin']}.")
        if "place" in facts:
            options.append(f"Something happened in {e['place']} involving {e['agent']}.")
        return rng.choice(options)
    other_agent = _person(rng)
    while other_agent == e["agent"]:
        other_agent = _person(rng)
    same_kind = [v for v in RTE_VERBS if v[3] == kind and v[0] != past]
    v2 = rng.choice(same_kind)
    options = [f"{other_agent} {past} {obj}.", f"{e['agent']} did not {base} {obj}.",
               f"{e['agent']} {v2[0]} {obj}.", f"{_cap(obj)} was {part} by {other_agent}.",
               f"{e['agent']} {past} {obj} in {_other(rng, TOWNS, e['place'])}."]
    if "role" in facts:
        options.append(f"{e['agent']} is a {_other(rng, OCCUPATIONS, e['role'])}.")
    if "origin" in facts:
        options.append(f"{e['agent']} comes from {_other(rng, TOWNS, e['origin'])}.")
    return rng.choice(options)


def _gen_rte(rng: random.Random, label: int) -> dict:
    """label 0: the hypothesis follows from the premise (" yes"); 1: it does not (" no")."""
    e = _rte_event(rng)
    premise, facts = _rte_premise(rng, e)
    hyp = _rte_hypothesis(rng, e, facts, entailed=(label == 0))
    hyp = _fix_articles(hyp)
    return {"premise": premise, "hypothesis": hyp, "label": label, "output": LABEL_WORDS["rte"][label]}


def _fix_articles(text: str) -> str:
    """Make every standalone 'a'/'an' agree with the next word."""
    words = text.split(" ")
    for i in range(len(words) - 1):
        if words[i].lower() in ("a", "an"):
            art = _a(words[i + 1])
            words[i] = _cap(art) if words[i][0].isupper() else art
    return " ".join(words)


# ----------------------------------------------------------------------------------------------
# BoolQ-like yes/no questions over a passage
# ----------------------------------------------------------------------------------------------

SEAS = ("the Sea of Amber", "the Grey Sea", "the Northern Ocean", "Lake Varn", "the Bay of Silmere",
        "the Iron Gulf", "Lake Ostrel", "the Western Sea")
INDUSTRIES = ("wool", "glass", "timber", "cheese", "shipbuilding", "textiles", "pottery", "wine", "salt",
              "paper", "clocks", "copper")
ANIMALS = ("lizard", "frog", "owl", "beetle", "moth", "fox", "heron", "snake", "bat", "salamander", "hare")
ANIMAL_ADJ = ("spotted", "striped", "golden", "lesser", "greater", "crested", "long-tailed", "mountain")
HABITATS = ("forests", "wetlands", "deserts", "grasslands", "caves", "river valleys", "coastal cliffs")
FOODS = ("insects", "seeds", "fish", "berries", "small mammals", "leaves", "worms")
WORK_KINDS = ("novel", "symphony", "opera", "treatise", "poem", "atlas", "play")
TITLE_WORDS = ("Silent Harbour", "Winter Road", "Glass Garden", "Last Lantern", "Northern Light",
               "Paper Crown", "Hollow Hill", "Iron Bird", "Salt Orchard", "Quiet River")


def _boolq_river(rng: random.Random) -> tuple[str, list, list]:
    name = f"the {rng.choice(_PLACE_HEADS)}{rng.choice(('a', 'en', 'is', 'ow', 'ey'))} River"
    country, sea = rng.choice(COUNTRIES), rng.choice(SEAS)
    length, year = rng.randrange(80, 1500, 10), rng.randrange(1600, 1950)
    town = rng.choice(TOWNS)
    intro = f"{_cap(name)} is a river in {country}."
    facts = [
        (f"It is {length} kilometres long.",
         *_numeric_q(rng, f"is {name} longer than {{}} kilometres", length, 50)),
        (f"It flows into {sea}.", f"does {name} flow into {sea}",
         f"does {name} flow into {_other(rng, SEAS, sea)}"),
        (f"The river was first mapped in {year}.",
         *_numeric_q(rng, f"was {name} mapped after {{}}", year, 20)),
        (f"The town of {town} lies on its banks.", f"does {town} lie on {name}",
         f"does {_other(rng, TOWNS, town)} lie on {name}"),
    ]
    return intro, facts, [f"is {name} in {country}", f"is {name} in {_other(rng, COUNTRIES, country)}"]


def _boolq_city(rng: random.Random) -> tuple[str, list, list]:
    name, country = rng.choice(TOWNS), rng.choice(COUNTRIES)
    pop, year, ind = rng.randrange(2000, 900000, 1000), rng.randrange(900, 1900), rng.choice(INDUSTRIES)
    intro = f"{name} is a town in the north of {country}."
    facts = [
        (f"It has a population of about {pop:,}.",
         *_numeric_q(rng, f"do more than {{:,}} people live in {name}", pop, 1000)),
        (f"It was founded in {year}.", *_numeric_q(rng, f"was {name} founded after {{}}", year, 30)),
        (f"For centuries the town was known for its {ind}.", f"is {name} known for its {ind}",
         f"is {name} known for its {_other(rng, INDUSTRIES, ind)}"),
        (f"The mayor of {name} is {_person(rng)}.", f"does {name} have a mayor", f"is {name} without a mayor"),
    ]
    return intro, facts, [f"is {name} in {country}", f"is {name} in {_other(rng, COUNTRIES, country)}"]


def _boolq_person(rng: random.Random) -> tuple[str, list, list]:
    name, occ = _person(rng), rng.choice(OCCUPATIONS)
    born, town = rng.randrange(1700, 1960), rng.choice(TOWNS)
    kind, title = rng.choice(WORK_KINDS), rng.choice(TITLE_WORDS)
    last = name.split()[1]
    intro = f"{name} (born {born}) is {_a(occ)} {occ} from {town}."
    facts = [
        (f"{last} is best known for the {kind} {title}.", f"did {name} write the {kind} {title}",
         f"did {name} write the {kind} {_other(rng, TITLE_WORDS, title)}"),
        (f"{last} grew up in {town} and later moved to {rng.choice(COUNTRIES)}.", f"did {name} grow up in {town}",
         f"did {name} grow up in {_other(rng, TOWNS, town)}"),
        (f"{last} received the {rng.choice(TOWNS)} Prize in {born + rng.randrange(25, 60)}.",
         f"did {name} ever receive a prize", f"has {name} never received a prize"),
    ]
    birth_q = _numeric_q(rng, f"was {name} born before {{}}", born, 15, yes_when_greater=False)
    return intro, facts, [birth_q[0], birth_q[1]]


def _boolq_animal(rng: random.Random) -> tuple[str, list, list]:
    name = f"the {rng.choice(ANIMAL_ADJ)} {rng.choice(TOWNS)} {rng.choice(ANIMALS)}"
    hab, food = rng.choice(HABITATS), rng.choice(FOODS)
    size, night = rng.randrange(3, 90), rng.random() < 0.5
    intro = f"{_cap(name)} is an animal found in the {hab} of {rng.choice(COUNTRIES)}."
    facts = [
        (f"It feeds mainly on {food}.", f"does {name} eat {food}", f"does {name} eat {_other(rng, FOODS, food)}"),
        (f"Adults grow to about {size} centimetres.",
         *_numeric_q(rng, f"is {name} longer than {{}} centimetres", size, 2)),
        (f"It is {'active at night and sleeps during the day' if night else 'active during the day'}.",
         f"is {name} {'nocturnal' if night else 'active during the day'}",
         f"is {name} {'active during the day' if night else 'nocturnal'}"),
    ]
    return intro, facts, [f"does {name} live in {hab}", f"does {name} live in {_other(rng, HABITATS, hab)}"]


def _numeric_q(rng: random.Random, fmt: str, value: int, step: int, yes_when_greater: bool = True) -> tuple[str, str]:
    """(yes question, no question) comparing `value` with a threshold below / above it."""
    below = value - step * rng.randrange(1, 6)
    above = value + step * rng.randrange(1, 6)
    if yes_when_greater:  # "is X more than {t}": yes for t below value
        return fmt.format(below), fmt.format(above)
    return fmt.format(above), fmt.format(below)


_BOOLQ_ENTITIES = (_boolq_river, _boolq_city, _boolq_person, _boolq_animal)


def _gen_boolq(rng: random.Random, label: int) -> dict:
    """label 1: the answer is yes; 0: no."""
    intro, facts, intro_q = rng.choice(_BOOLQ_ENTITIES)(rng)
    keep = rng.sample(facts, rng.randint(min(2, len(facts)), len(facts)))
    passage = " ".join([intro] + [f[0] for f in keep])
    candidates = [intro_q] + [f[1:] for f in keep]
    yes_q, no_q = rng.choice(candidates)
    question = yes_q if label == 1 else no_q
    return {"passage": passage, "question": question, "label": label, "output": LABEL_WORDS["boolq"][label]}


# ----------------------------------------------------------------------------------------------
# WebNLG-like data-to-text
# ----------------------------------------------------------------------------------------------

UNIVERSITIES = tuple(f"University of {t}" for t in TOWNS[::15])
COMPANIES = tuple(f"{h}{s}" for h in ("Nord", "Vel", "Astra", "Brim", "Cobalt", "Duna", "Fenn", "Halo")
                  for s in (" Industries", " Foods", " Motors", " Systems", " Airlines"))
DISHES = ("pasta bake", "fish soup", "rice pudding", "meat pie", "bean stew", "flatbread", "dumplings",
          "cheese tart", "noodle salad", "honey cake")
INGREDIENTS = ("rice", "cheese", "beans", "honey", "lamb", "potatoes", "tomatoes", "flour", "garlic", "cream")
COURSES = ("main course", "dessert", "starter", "side dish")
AWARDS = ("Golden Quill", "Silver Compass", "Order of Merit", "Blue Ribbon", "Star of Letters")
MONTHS = ("January February March April May June July August September October November December").split()


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
    text = _person(rng) if kind == "person" else rng.choice(_WN_POOLS[kind])
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
    return tmpl.format(s=s_text, o=o_text, a_o=f"{_a(o_text)} {o_text}")


def _gen_webnlg(rng: random.Random, label=None) -> dict:
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
        sentences.append(_cap(_wn_clause(rng, spec2, clauses[0][1][1], obj2[1])) + ".")
    text = " ".join(sentences).replace(" they is ", " they are ").replace(" they was ", " they were ")
    text = text.replace(" they has ", " they have ").replace(" they holds ", " they hold ")
    return {"triples": triples, "output": text}


def _join_clauses(parts: list[str]) -> str:
    if len(parts) == 1:
        body = parts[0]
    else:
        body = ", ".join(parts[:-1]) + " and " + parts[-1]
    return _cap(body) + "."


# ----------------------------------------------------------------------------------------------
# WMT16 de-en-like translation: a small German-like source language -> English
# ----------------------------------------------------------------------------------------------

# German noun, gender (m/f/n), English
DE_AGENTS = (("Hund", "m", "dog"), ("Katze", "f", "cat"), ("Mann", "m", "man"), ("Frau", "f", "woman"),
             ("Kind", "n", "child"), ("Lehrer", "m", "teacher"), ("Arzt", "m", "doctor"), ("Vogel", "m", "bird"),
             ("Pferd", "n", "horse"), ("Bauer", "m", "farmer"), ("Junge", "m", "boy"), ("Mädchen", "n", "girl"),
             ("Freund", "m", "friend"), ("Nachbar", "m", "neighbour"), ("König", "m", "king"), ("Koch", "m", "cook"),
             ("Student", "m", "student"), ("Maus", "f", "mouse"), ("Großmutter", "f", "grandmother"))
DE_OBJECTS = {
    "thing": (("Ball", "m", "ball"), ("Buch", "n", "book"), ("Tisch", "m", "table"), ("Stuhl", "m", "chair"),
              ("Auto", "n", "car"), ("Haus", "n", "house"), ("Tür", "f", "door"), ("Fenster", "n", "window"),
              ("Lampe", "f", "lamp"), ("Tasche", "f", "bag"), ("Blume", "f", "flower"), ("Schlüssel", "m", "key"),
              ("Hut", "m", "hat"), ("Bild", "n", "picture"), ("Fahrrad", "n", "bicycle"), ("Uhr", "f", "clock"),
              ("Karte", "f", "map"), ("Flasche", "f", "bottle"), ("Boot", "n", "boat"), ("Stein", "m", "stone"),
              ("Brief", "m", "letter"), ("Zeitung", "f", "newspaper"), ("Geschenk", "n", "gift")),
    "food": (("Apfel", "m", "apple"), ("Brot", "n", "bread"), ("Kuchen", "m", "cake"), ("Suppe", "f", "soup"),
             ("Käse", "m", "cheese"), ("Birne", "f", "pear"), ("Ei", "n", "egg")),
    "drink": (("Milch", "f", "milk"), ("Kaffee", "m", "coffee"), ("Wasser", "n", "water"), ("Tee", "m", "tea"),
              ("Saft", "m", "juice")),
    "text": (("Buch", "n", "book"), ("Brief", "m", "letter"), ("Zeitung", "f", "newspaper"), ("Karte", "f", "map"),
             ("Gedicht", "n", "poem")),
}
# German 3rd singular, participle, English 3rd singular, English participle, object kinds
DE_VERBS = (("sieht", "gesehen", "sees", "seen", "thing food drink text"),
            ("kauft", "gekauft", "buys", "bought", "thing food drink text"),
            ("findet", "gefunden", "finds", "found", "thing food text"),
            ("trägt", "getragen", "carries", "carried", "thing food drink"),
            ("bringt", "gebracht", "brings", "brought", "thing food drink text"),
            ("hält", "gehalten", "holds", "held", "thing food text"),
            ("liebt", "geliebt", "loves", "loved", "thing food drink text"),
            ("malt", "gemalt", "paints", "painted", "thing food"),
            ("verkauft", "verkauft", "sells", "sold", "thing food drink text"),
            ("nimmt", "genommen", "takes", "taken", "thing food drink text"),
            ("versteckt", "versteckt", "hides", "hidden", "thing food text"),
            ("repariert", "repariert", "repairs", "repaired", "thing"),
            ("putzt", "geputzt", "cleans", "cleaned", "thing"),
            ("isst", "gegessen", "eats", "eaten", "food"),
            ("trinkt", "getrunken", "drinks", "drunk", "drink"),
            ("liest", "gelesen", "reads", "read", "text"),
            ("schreibt", "geschrieben", "writes", "written", "text"))
DE_ADJECTIVES = (("groß", "big"), ("klein", "small"), ("alt", "old"), ("neu", "new"), ("rot", "red"),
                 ("blau", "blue"), ("grün", "green"), ("schön", "beautiful"), ("schnell", "fast"),
                 ("jung", "young"), ("müde", "tired"), ("glücklich", "happy"), ("traurig", "sad"),
                 ("hungrig", "hungry"), ("freundlich", "friendly"), ("laut", "loud"), ("leise", "quiet"),
                 ("warm", "warm"), ("kalt", "cold"), ("schwer", "heavy"), ("billig", "cheap"),
                 ("teuer", "expensive"), ("gelb", "yellow"), ("weiß", "white"), ("schwarz", "black"),
                 ("klug", "clever"), ("stark", "strong"), ("krank", "sick"), ("fremd", "strange"))
DE_TIME = (("heute", "today"), ("jetzt", "now"), ("morgen", "tomorrow"), ("abends", "in the evening"),
           ("morgens", "in the morning"), ("sonntags", "on Sundays"))
DE_FREQ = (("oft", "often"), ("immer", "always"), ("manchmal", "sometimes"), ("selten", "rarely"),
           ("nie", "never"), ("gern", "gladly"))
DE_PLACES = (("im Garten", "in the garden"), ("im Park", "in the park"), ("in der Küche", "in the kitchen"),
             ("in der Stadt", "in the city"), ("am Fluss", "by the river"), ("im Haus", "in the house"),
             ("auf dem Markt", "at the market"), ("in der Schule", "at school"), ("im Wald", "in the forest"),
             ("am Bahnhof", "at the station"))
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
    en_art = "the" if definite else _a(en_words[0])
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


def _gen_wmt16_de_en(rng: random.Random, label=None) -> dict:
    form = rng.randrange(5)
    de, en = _de_clause(rng)
    if form == 3:  # subordinate clause: verb-final in the source
        subj = _de_np(rng, rng.choice(DE_AGENTS), "nom", max_adj=0)
        adj = rng.choice(DE_ADJECTIVES)
        de, en = f"{de}, weil {subj[0]} {adj[0]} ist", f"{en} because {subj[1]} is {adj[1]}"
    elif form == 4:  # two coordinated clauses
        de2, en2 = _de_clause(rng, allow_inversion=False)
        de, en = f"{de} und {de2}", f"{en} and {en2}"
    return {"source": _cap(de) + ".", "output": _cap(en) + "."}


# ----------------------------------------------------------------------------------------------
# Prompt templates (index 0 is the task's default format; all are used in the FLAN-style mix)
# ----------------------------------------------------------------------------------------------

TEMPLATES: dict[str, tuple[str, ...]] = {
    "sst2": (
        "Review: {sentence}\nSentiment:",
        "{sentence}\nWhat is the sentiment of this review?\nOPTIONS:\n- negative\n- positive\nAnswer:",
        "Is the sentiment of the following sentence positive or negative?\n{sentence}\nAnswer:",
        "Movie review: \"{sentence}\"\nDid the reviewer like the film? Answer positive or negative:",
    ),
    "rte": (
        "Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail the hypothesis?\nAnswer:",
        "{premise}\n\nBased on the paragraph above, can we conclude that \"{hypothesis}\"?\n"
        "OPTIONS:\n- yes\n- no\nAnswer:",
        "Read the text and decide whether the sentence is true.\n\nText: {premise}\nSentence: {hypothesis}\n"
        "Answer yes or no:",
    ),
    "boolq": (
        "Passage: {passage}\nQuestion: {question}?\nAnswer:",
        "{passage}\n\nCan we conclude that the answer to \"{question}?\" is yes?\nOPTIONS:\n- no\n- yes\nAnswer:",
        "Read the text and answer the question with yes or no.\n\n{passage}\n\nQuestion: {question}?\nAnswer:",
    ),
    "webnlg": (
        "Triples: {triples}\nText:",
        "Generate a sentence that describes the following data: {triples}\nSentence:",
        "Data: {triples}\n\nWhat would a sentence about this data be like?\nAnswer:",
    ),
    "wmt16_de_en": (
        "Translate German to English.\nGerman: {source}\nEnglish:",
        "Translate the following sentence to English:\n{source}\nTranslation:",
        "How is \"{source}\" said in English?\nAnswer:",
    ),
}
# content fields of a record that the templates read (besides "output")
CONTENT_FIELDS = {"sst2": ("sentence",), "rte": ("premise", "hypothesis"), "boolq": ("passage", "question"),
                  "webnlg": ("triples",), "wmt16_de_en": ("source",)}
_GENERATORS: dict[str, Callable[[random.Random, int | None], dict]] = {
    "sst2": _gen_sst2, "rte": _gen_rte, "boolq": _gen_boolq, "webnlg": _gen_webnlg,
    "wmt16_de_en": _gen_wmt16_de_en,
}


def check_task(task: str) -> str:
    """Return `task` if known, else raise ValueError listing the known tasks."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return task


def render(task: str, record: Mapping, template: int = 0) -> dict:
    """Sample text fields of a record under template `template` of its task.

    Returns {"input", "context", "target", "output"}: context = the filled prompt,
    target = " " + record["output"], input = context + target.
    """
    fields = dict(record)
    if task == "webnlg":
        fields["triples"] = " ; ".join(record["triples"])
    context = TEMPLATES[check_task(task)][template].format(**fields)
    target = " " + str(record["output"])
    return {"input": context + target, "context": context, "target": target, "output": str(record["output"])}


def make_sample(task: str, record: Mapping, sid: int, template: int = 0) -> dict:
    """A full sample dict (id, input, context, target, output, task, content fields, labels)."""
    sample = {"id": int(sid), **render(task, record, template), "task": task}
    for key in CONTENT_FIELDS[task]:
        sample[key] = record[key]
    if task in CLASSIFICATION_TASKS:
        sample["label"] = int(record["label"])
        sample["clean_label"] = int(record.get("clean_label", record["label"]))
    if template:
        sample["template"] = int(template)
    return sample


# ----------------------------------------------------------------------------------------------
# Building task sets
# ----------------------------------------------------------------------------------------------

def _rng(*parts) -> random.Random:
    """A random stream named by `parts` (stable across Python processes and versions)."""
    return random.Random(zlib.crc32(":".join(map(str, parts)).encode()))


def _record_key(task: str, record: Mapping) -> str:
    return json.dumps([record[k] for k in CONTENT_FIELDS[task]], ensure_ascii=False)


def _balanced_labels(rng: random.Random, n: int) -> list[int]:
    labels = [i % 2 for i in range(n)]
    rng.shuffle(labels)
    return labels


def _generate(task: str, n: int, rng: random.Random, seen: set[str], max_tries: int = 200) -> list[dict]:
    """n records with content not in `seen` (which is updated); labels balanced for classification."""
    gen = _GENERATORS[task]
    labels = _balanced_labels(rng, n) if task in CLASSIFICATION_TASKS else [None] * n
    out = []
    for label in labels:
        for _ in range(max_tries):
            rec = gen(rng, label)
            key = _record_key(task, rec)
            if key not in seen:
                seen.add(key)
                out.append(rec)
                break
        else:
            raise ValueError(f"{task}: could not generate {n} distinct examples (got {len(out)})")
    return out


def build_records(task: str, n_train: int = DEFAULT_N_TRAIN, n_test: int | None = None,
                  seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Structured (un-rendered) train and test records of a built-in task, disjoint in content.

    The test records depend only on (task, n_test, seed), so a test set is the same whatever the
    training size (the FLAN eval set equals the fine-tuning test sets); the training records are
    drawn from their own stream and never repeat a test record.
    """
    check_task(task)
    n_test = PAPER_TEST_SIZES[task] if n_test is None else n_test
    if n_train < 0 or n_test < 0:
        raise ValueError(f"{task}: sizes must be >= 0, got n_train={n_train}, n_test={n_test}")
    seen: set[str] = set()
    test = _generate(task, n_test, _rng(task, seed, "test"), seen)
    train = _generate(task, n_train, _rng(task, seed, "train"), seen)
    return train, test


def apply_label_noise(samples: Sequence[dict], task: str, fraction: float, seed: int = 0) -> list[dict]:
    """Flip the labels of exactly round(fraction * N) samples (a seeded choice).

    Returns new samples; flipped ones get the other label word as target, "label" = the
    noisy label, "clean_label" = the true label and "flipped": True. Only for classification
    tasks. The prompt (context) is kept; the target is re-rendered.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return [dict(s) for s in samples]
    if task not in CLASSIFICATION_TASKS:
        raise ValueError(f"label noise needs a classification task ({', '.join(CLASSIFICATION_TASKS)}), got {task!r}")
    k = round(fraction * len(samples))
    flip = set(_rng(task, seed, "noise").sample(range(len(samples)), k))
    out = []
    for i, s in enumerate(samples):
        s = dict(s)
        s.setdefault("clean_label", s["label"])
        s["flipped"] = i in flip
        if i in flip:
            s["label"] = 1 - int(s["label"])
            s["output"] = LABEL_WORDS[task][s["label"]]
            s["target"] = " " + s["output"]
            s["input"] = s["context"] + s["target"]
        out.append(s)
    return out


def build_task(name: str, n_train: int = DEFAULT_N_TRAIN, n_test: int | None = None, seed: int = 0,
               label_noise: float = 0.0) -> tuple[list[dict], list[dict]]:
    """Built-in (train_samples, test_samples) of task `name` in its default prompt format.

    n_test defaults to the paper's test size (sst2 200, rte 277, boolq 200, webnlg 178,
    wmt16_de_en 200). Ids are 0..N-1 in each list; no training input equals a test input.
    label_noise flips exactly round(label_noise * n_train) training labels (see apply_label_noise).
    """
    train_rec, test_rec = build_records(name, n_train, n_test, seed)
    train = [make_sample(name, r, i) for i, r in enumerate(train_rec)]
    test = [make_sample(name, r, i) for i, r in enumerate(test_rec)]
    if label_noise:
        train = apply_label_noise(train, name, label_noise, seed)
    return train, test


def task_file_paths(root: str | os.PathLike, task: str, n_train: int = DEFAULT_N_TRAIN,
                    n_test: int | None = None) -> tuple[Path, Path]:
    """(train_path, eval_path) named as in GPTDynamics.

    Under <root>/sft_tasks/<task>/ for the five tasks; for task "flan" under <root>/it_tasks/
    (flan_train_0_{n-1}.json, flan_eval_0_{m-1}.json; n_test defaults to 1055 there).
    """
    root = Path(root)
    if task == "flan":
        m = sum(PAPER_TEST_SIZES.values()) if n_test is None else n_test
        d = root / "it_tasks"
        return d / f"flan_train_0_{n_train - 1}.json", d / f"flan_eval_0_{m - 1}.json"
    check_task(task)
    m = PAPER_TEST_SIZES[task] if n_test is None else n_test
    d = root / "sft_tasks" / task
    a, b = n_train - 1, m - 1
    names = {
        "sst2": (f"sst2_train_0-{a}.json", f"sst2_validation_0-{b}.json"),
        "rte": (f"rte_0_{a}_train.json", f"rte_0_{b}_eval.json"),
        "boolq": (f"boolq_train_0-{a}.json", f"boolq_validation_0-{b}.json"),
        "webnlg": (f"webnlg_train_0-{a}.json", f"webnlg_dev_0-{b}.json"),
        "wmt16_de_en": (f"wmt16_de_en_train_0-{a}.json", f"wmt16_de_en_test_0-{b}.json"),
    }[task]
    return d / names[0], d / names[1]


def ensure_task_files(root: str | os.PathLike, task: str, n_train: int | None = None, n_test: int | None = None,
                      seed: int = 0, overwrite: bool = False) -> tuple[Path, Path]:
    """Write the built-in train / eval sample files of `task` (or "flan") unless they exist.

    n_train defaults to 200 (1600 for "flan"); n_test to the paper sizes. Returns
    (train_path, eval_path) as task_file_paths names them. Existing files are not checked
    against the seed: delete them or pass overwrite=True to regenerate.
    """
    from .io import write_jsonl

    if task == "flan":
        n_train = FLAN_N_TRAIN if n_train is None else n_train
        sizes = {t: (PAPER_TEST_SIZES[t] if n_test is None else n_test) for t in TASKS}
        paths = task_file_paths(root, "flan", n_train, sum(sizes.values()))
        make = lambda: build_flan_mix(n_train, sizes, seed)  # noqa: E731
    else:
        n_train = DEFAULT_N_TRAIN if n_train is None else n_train
        paths = task_file_paths(root, task, n_train, n_test)
        make = lambda: build_task(task, n_train, n_test, seed)  # noqa: E731
    if overwrite or not all(p.exists() for p in paths):
        for path, samples in zip(paths, make()):
            write_jsonl(path, samples)
            logger.info("wrote %s (%d samples)", path, len(samples))
    return paths


# ----------------------------------------------------------------------------------------------
# FLAN-style instruction-tuning mix
# ----------------------------------------------------------------------------------------------

def flan_offsets(test_sizes: Mapping[str, int]) -> dict[str, int]:
    """Global-id offset of each task in the FLAN eval set (tasks in TASKS order)."""
    offsets, total = {}, 0
    for task in TASKS:
        offsets[task] = total
        total += int(test_sizes[task])
    return offsets


def _split_evenly(n: int, k: int) -> list[int]:
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _retemplate(task: str, sample: Mapping, rng: random.Random) -> dict:
    template = rng.randrange(len(TEMPLATES[task]))
    out = dict(sample)
    out.update(render(task, sample, template))
    out["template"] = template
    return out


def build_flan_mix(n_train: int = FLAN_N_TRAIN, n_test: Mapping[str, int] | None = None, seed: int = 0,
                   task_sets: Mapping[str, tuple[Sequence[dict], Sequence[dict]]] | None = None
                   ) -> tuple[list[dict], list[dict]]:
    """Instruction-tuning (train, eval) mix of the five tasks under several FLAN-style templates.

    Train: n_train samples split evenly over the tasks (remainder to the first tasks), each
    rendered with a seeded random template, shuffled; fields "task" and "local_id" (index in that
    task's training set). Eval: the five test sets concatenated in the order of TASKS, so that
    global id = local_id + flan_offsets(sizes)[task] (= FLAN_TEST_OFFSETS for the paper sizes).
    task_sets: per-task (train, test) samples to use instead of the built-in generators (e.g.
    imported data); each must hold the task's content fields and "output".
    """
    sizes = dict(PAPER_TEST_SIZES, **(n_test or {}))
    per_task = dict(zip(TASKS, _split_evenly(n_train, len(TASKS))))
    rng = _rng("flan", seed, "templates")
    train, test = [], []
    for task in TASKS:
        if task_sets is not None and task in task_sets:
            tr, te = task_sets[task]
            if len(tr) < per_task[task]:
                raise DataError(f"flan mix: task {task} has {len(tr)} training samples, needs {per_task[task]}")
            tr, te = list(tr)[: per_task[task]], list(te)
            sizes[task] = len(te)
        else:
            tr, te = build_task(task, per_task[task], sizes[task], seed)
        train += [dict(_retemplate(task, s, rng), task=task, local_id=i) for i, s in enumerate(tr)]
        test += [dict(_retemplate(task, s, rng), task=task, local_id=i) for i, s in enumerate(te)]
    _rng("flan", seed, "order").shuffle(train)
    for i, s in enumerate(train):
        s["id"] = i
    offsets = flan_offsets(sizes)
    for s in test:
        s["id"] = offsets[s["task"]] + s["local_id"]
    if all(sizes[t] == PAPER_TEST_SIZES[t] for t in TASKS):
        assert offsets == FLAN_TEST_OFFSETS
    return train, test


# ----------------------------------------------------------------------------------------------
# Pre-training corpus (for the locally made base model and its tokenizer)
# ----------------------------------------------------------------------------------------------

def _corpus_sentence(rng: random.Random) -> str:
    """One sentence of generic English (templates used by no task generator)."""
    t = rng.randrange(14)
    name, town, country = _person(rng), rng.choice(TOWNS), rng.choice(COUNTRIES)
    if t == 0:
        return f"My cousin {name.split()[0]} moved to {town} when the winter was over."
    if t == 1:
        return (f"People in {country} say that a good meal should feel {rng.choice(SST_POSITIVE)} "
                f"and never {rng.choice(SST_NEGATIVE)}.")
    if t == 2:
        de, _, en = rng.choice(DE_AGENTS + DE_OBJECTS[rng.choice(tuple(DE_OBJECTS))])
        return f"In the old language of the valley, the word {de} means {en}."
    if t == 3:
        de, en = rng.choice(DE_ADJECTIVES + DE_TIME + DE_FREQ + DE_PLACES)
        return f"The phrase {de} is usually rendered as {en}."
    if t == 4:
        v = rng.choice(DE_VERBS)
        return f"Teachers explain that {v[0]} comes from the same root as {v[1]}, like {v[2]} and {v[3]}."
    if t == 5:
        return (f"Every {rng.choice(MONTHS)} the {rng.choice(OCCUPATIONS)}s of {town} hold a fair with "
                f"{rng.choice(INGREDIENTS)}, {rng.choice(INDUSTRIES)} and music.")
    if t == 6:
        return (f"Some critics found the last {rng.choice(SST_GENRES)} they watched {rng.choice(SST_INTENSIFIERS)} "
                f"{rng.choice(SST_POSITIVE + SST_NEGATIVE)}, while others stayed home to read.")
    if t == 7:
        return (f"Near {town} there is a {rng.choice(ANIMAL_ADJ)} {rng.choice(ANIMALS)} that children like "
                f"to watch in the {rng.choice(HABITATS)}.")
    if t == 8:
        return f"{name} once wrote a long letter about the {rng.choice(SST_NOUNS)} of a play in {country}."
    if t == 9:
        return (f"The road from {town} to {rng.choice(TOWNS)} takes {rng.randrange(2, 12)} hours, "
                f"and the {rng.choice(RTE_OBJECTS['venue'])} on the way is worth a stop.")
    if t == 10:
        return (f"Ask anyone at the {rng.choice(COMPANIES)} office and they will tell you that "
                f"{rng.choice(DISHES)} tastes best with {rng.choice(INGREDIENTS)}.")
    if t == 11:
        return (f"Question: how many {rng.choice(('windows', 'doors', 'chairs', 'lamps'))} did the old "
                f"{rng.choice(RTE_OBJECTS['venue'])} have? Answer: {rng.randrange(2, 40)}.")
    if t == 12:
        return (f"During the {rng.choice(('spring', 'summer', 'autumn'))} of {rng.randrange(1800, 2020)}, "
                f"the {rng.choice(RTE_OBJECTS['org'])} met {rng.randrange(2, 9)} times to talk about a "
                f"{rng.choice(RTE_OBJECTS['plan'])}.")
    return (f"The {rng.choice(OCCUPATIONS)} {name} enjoyed a good {rng.choice(WORK_KINDS)}, long walks by "
            f"{rng.choice(SEAS)}, and quiet evenings.")


def pretraining_corpus(n_docs: int = 2000, seed: int = 0, min_sentences: int = 3,
                       max_sentences: int = 8, format_fraction: float = 0.25) -> list[str]:
    """n_docs generic English documents (3-8 sentences each) sharing vocabulary with the tasks.

    The sentence templates are disjoint from every task generator, so no training or test example
    (prompt, sentence, passage or target text) occurs in the corpus. A `format_fraction` of the
    documents are question/answer lines about such sentences (see _format_document).
    """
    rng = _rng("corpus", seed)
    docs = []
    for _ in range(n_docs):
        if rng.random() < format_fraction:
            docs.append(_format_document(rng))
        else:
            docs.append(" ".join(_corpus_sentence(rng) for _ in range(rng.randint(min_sentences, max_sentences))))
    return docs


# Prompt cues and answer words of the tasks, used by the corpus's format documents
_FORMAT_CUES = (("Sentiment:", (" positive", " negative")), ("Answer:", (" yes", " no")),
                ("Answer yes or no:", (" yes", " no")), ("Is it true?", (" yes", " no")))


def _format_document(rng: random.Random) -> str:
    """A document of question/answer lines about generic corpus sentences: the prompt cues and
    answer words of the tasks appear (so a base model starts with a sensible prior over them, as a
    pre-trained LM would), with random answers, so nothing about any task's labels is learnt."""
    lines = []
    for _ in range(rng.randint(2, 4)):
        cue, words = rng.choice(_FORMAT_CUES)
        lines.append(f"Note: {_corpus_sentence(rng)}\n{cue}{rng.choice(words)}")
    return "\n\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Importers (real datasets): one row converter per task, shared by the hub and local paths
# ----------------------------------------------------------------------------------------------

# task field -> accepted column names (first present wins), for local files
DEFAULT_COLUMNS = {
    "sst2": {"sentence": ("sentence", "text"), "label": ("label",)},
    "rte": {"premise": ("premise", "sentence1"), "hypothesis": ("hypothesis", "sentence2"), "label": ("label",)},
    "boolq": {"passage": ("passage",), "question": ("question",), "label": ("label", "answer")},
    "webnlg": {"triples": ("triples",), "output": ("text", "target", "lex")},
    "wmt16_de_en": {"source": ("de", "source"), "output": ("en", "target")},
}
# Hugging Face dataset (path, name) and the (train, test) splits used
HF_DATASETS = {"sst2": ("glue", "sst2"), "rte": ("super_glue", "rte"), "boolq": ("super_glue", "boolq"),
               "webnlg": ("web_nlg", "release_v3.0_en"), "wmt16_de_en": ("wmt16", "de-en")}
HF_SPLITS = {"sst2": ("train", "validation"), "rte": ("train", "validation"), "boolq": ("train", "validation"),
             "webnlg": ("train", "dev"), "wmt16_de_en": ("train", "test")}
_LABEL_STRINGS = {
    "sst2": {"0": 0, "1": 1, "negative": 0, "positive": 1, "neg": 0, "pos": 1},
    "rte": {"0": 0, "1": 1, "entailment": 0, "not_entailment": 1, "yes": 0, "no": 1},
    "boolq": {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1},
}


def _parse_label(task: str, value, where: str) -> int:
    key = str(value).strip().lower()
    if key.endswith(".0"):
        key = key[:-2]
    if key not in _LABEL_STRINGS[task]:
        raise DataError(f"{where}: bad {task} label {value!r}; expected one of "
                        f"{sorted(set(_LABEL_STRINGS[task]))}")
    return _LABEL_STRINGS[task][key]


def _parse_triples(value, where: str) -> list[str]:
    """Triples as a list of 's | r | o' strings, from a list, a JSON list, or 'a | b | c ; d | e | f'."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise DataError(f"{where}: triples column is not a valid JSON list: {text[:60]!r}") from None
        else:
            value = [t for t in text.replace("\n", ";").split(";") if t.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(f"{where}: expected 1 or more triples 'subject | relation | object', got {value!r}")
    triples = []
    for t in value:
        if isinstance(t, (list, tuple)) and len(t) == 3:
            t = " | ".join(map(str, t))
        parts = [p.strip() for p in str(t).split("|")]
        if len(parts) != 3 or not all(parts):
            raise DataError(f"{where}: expected a triple 'subject | relation | object', got {t!r}")
        triples.append(" | ".join(parts))
    return triples


def convert_row(task: str, row: Mapping, where: str) -> dict:
    """A record (content fields + "output" [+ "label"]) from a row already keyed by task field names.

    where: "file:line" (or dataset name and row) used in error messages.
    """
    check_task(task)
    rec: dict = {}
    for key in CONTENT_FIELDS[task]:
        value = row.get(key)
        if key == "triples":
            rec[key] = _parse_triples(value, where)
            continue
        if value is None or not str(value).strip():
            raise DataError(f"{where}: empty {key!r} for task {task}")
        rec[key] = " ".join(str(value).split())
    if task in CLASSIFICATION_TASKS:
        rec["label"] = _parse_label(task, row.get("label"), where)
        rec["output"] = LABEL_WORDS[task][rec["label"]]
    else:
        out = row.get("output")
        if out is None or not str(out).strip():
            raise DataError(f"{where}: empty target text for task {task}")
        rec["output"] = " ".join(str(out).split())
    if task == "boolq":
        rec["question"] = rec["question"].rstrip("?").strip()
    return rec


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """(column names, [(line number, row dict)]) of a csv, tsv or JSON-lines file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if suffix in (".jsonl", ".json"):
        from .io import iter_jsonl
        rows = list(iter_jsonl(path))
        for lineno, obj in rows:
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object with named fields")
        columns = list(dict.fromkeys(k for _, obj in rows for k in obj))
        return columns, rows
    if suffix not in (".csv", ".tsv"):
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .tsv, .jsonl or .json")
    with open(path, "r", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
        rows = [(i + 2, row) for i, row in enumerate(reader)]
        columns = list(reader.fieldnames or [])
    return columns, rows


def _resolve_columns(task: str, path: Path, present: Sequence[str],
                     columns: Mapping[str, str] | None) -> dict[str, str]:
    """task field -> column name; DataError naming the file, missing and present columns."""
    mapping, missing = {}, []
    for field, candidates in DEFAULT_COLUMNS[task].items():
        if columns and field in columns:
            candidates = (columns[field],)
        found = next((c for c in candidates if c in present), None)
        if found is None:
            missing.append("/".join(candidates))
        else:
            mapping[field] = found
    if missing:
        raise DataError(f"{path}: task {task} needs column(s) {', '.join(missing)}; "
                        f"the file has {', '.join(present) or 'no columns'}")
    return mapping


def _select(records: list[dict], n: int | None, seed: int, task: str) -> list[dict]:
    """Drop content duplicates, then a seeded choice of n (all when n is None), in a seeded order."""
    unique = list({_record_key(task, r): r for r in records}.values())
    if n is None:
        return unique
    if n > len(unique):
        raise DataError(f"{task}: asked for {n} samples but only {len(unique)} distinct ones are available")
    return _rng(task, seed, "select").sample(unique, n)


def import_local(task: str, path: str | os.PathLike, columns: Mapping[str, str] | None = None,
                 n: int | None = None, seed: int = 0) -> list[dict]:
    """Samples of `task` from a csv / tsv / JSON-lines file with named columns.

    Default columns (first present wins): sst2 sentence|text, label; rte premise|sentence1,
    hypothesis|sentence2, label; boolq passage, question, label|answer; webnlg triples, text|target|lex;
    wmt16_de_en de|source, en|target. `columns` maps a task field (as the keys of DEFAULT_COLUMNS)
    to a column name. n: a seeded random choice of n distinct rows (all when None).
    """
    check_task(task)
    path = Path(path)
    present, rows = _read_table(path)
    mapping = _resolve_columns(task, path, present, columns)
    records = [convert_row(task, {f: row.get(c) for f, c in mapping.items()}, f"{path}:{lineno}")
               for lineno, row in rows]
    return [make_sample(task, r, i) for i, r in enumerate(_select(records, n, seed, task))]


def hf_row_to_fields(task: str, row: Mapping) -> dict:
    """Map a row of the task's Hugging Face dataset to task field names (see DEFAULT_COLUMNS)."""
    if task == "sst2":
        return {"sentence": row["sentence"], "label": row["label"]}
    if task == "rte":
        return {"premise": row["premise"], "hypothesis": row["hypothesis"], "label": row["label"]}
    if task == "boolq":
        return {"passage": row["passage"], "question": row["question"], "label": row["label"]}
    if task == "webnlg":
        triples = row["modified_triple_sets"]["mtriple_set"][0]
        texts = row["lex"]["text"]
        return {"triples": list(triples), "output": texts[0] if texts else None}
    if task == "wmt16_de_en":
        return {"source": row["translation"]["de"], "output": row["translation"]["en"]}
    raise ValueError(check_task(task))


def convert_hf_rows(task: str, rows: Iterable[Mapping], source: str = "hub") -> list[dict]:
    """Records from Hugging Face rows (rows with label -1, i.e. unlabelled, raise DataError)."""
    return [convert_row(task, hf_row_to_fields(task, row), f"{source} row {i}") for i, row in enumerate(rows)]


def import_hf(task: str, split: str, n: int | None = None, seed: int = 0, max_rows: int = 20000) -> list[dict]:
    """Samples of `task` from its Hugging Face dataset (needs the hub or a local datasets cache).

    Reads at most max_rows rows of `split` (a seeded shuffle first), converts them with the same
    row converter as import_local and returns a seeded choice of n distinct samples.
    """
    check_task(task)
    import datasets  # imported here: only this path needs it

    path, name = HF_DATASETS[task]
    ds = datasets.load_dataset(path, name, split=split)
    ds = ds.shuffle(seed=seed).select(range(min(max_rows, len(ds))))
    logger.info("%s: read %d rows of %s/%s split %s", task, len(ds), path, name, split)
    records = convert_hf_rows(task, ds, source=f"{path}/{name}:{split}")
    return [make_sample(task, r, i) for i, r in enumerate(_select(records, n, seed, task))]


def split_disjoint(task: str, samples: Sequence[dict], n_train: int, n_test: int, seed: int = 0
                   ) -> tuple[list[dict], list[dict]]:
    """Split imported samples into disjoint (train, test) sets (no shared input text), ids 0..N-1."""
    unique = list({s["input"]: s for s in samples}.values())
    if n_train + n_test > len(unique):
        raise DataError(f"{task}: need {n_train}+{n_test} distinct samples, have {len(unique)}")
    picked = _rng(task, seed, "split").sample(unique, n_train + n_test)
    train = [dict(s, id=i) for i, s in enumerate(picked[:n_train])]
    test = [dict(s, id=i) for i, s in enumerate(picked[n_train:])]
    return train, test
