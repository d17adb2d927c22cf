"""The pre-training corpus of the offline base model and the examples of its instruction stage.

Generic English sentences, format lines with the tasks' prompt cues and random answers, and FLAN-like
documents of the five task types under prompts and answer words no task uses, built from content keys
reserved for the corpus (build.CORPUS_SHARE): disjoint from every task pool by construction.
"""

from __future__ import annotations

import random
from typing import Mapping, Sequence

from . import sst2
from .boolq import ANIMAL_ADJ, ANIMALS, HABITATS, INDUSTRIES, SEAS, WORK_KINDS
from .build import named_rng, reserved
from .registry import GENERATORS
from .rte import RTE_OBJECTS
from .spec import CLASSIFICATION_TASKS, check_task
from .sst2 import SST_GENRES, SST_INTENSIFIERS, SST_NEGATIVE, SST_NOUNS, SST_POSITIVE
from .webnlg import COMPANIES, DISHES, INGREDIENTS
from .wmt16 import DE_ADJECTIVES, DE_AGENTS, DE_FREQ, DE_OBJECTS, DE_PLACES, DE_TIME, DE_VERBS
from .words import COUNTRIES, MONTHS, OCCUPATIONS, TOWNS, person, words

GLAD_ENDINGS = words("corpus")["glad_endings"]
SAD_ENDINGS = words("corpus")["sad_endings"]


def _corpus_sentence(rng: random.Random) -> str:
    """One sentence of generic English (templates used by no task generator)."""
    t = rng.randrange(18)
    name, town, country = person(rng), rng.choice(TOWNS), rng.choice(COUNTRIES)
    if t >= 16:  # the words "positive" and "negative" next to sentiment words
        good = rng.random() < 0.5
        return (f"The reviews of the new {rng.choice(SST_GENRES)} were {'positive' if good else 'negative'}: "
                f"critics called the {rng.choice(SST_NOUNS)} {sst2.adjective(rng, good)}.")
    if t >= 14:  # sentiment words in sentiment-bearing context
        good = rng.random() < 0.5
        mood = rng.choice(("happy", "glad", "delighted", "thrilled") if good else ("upset", "bored", "annoyed", "sad"))
        return (f"We were {mood} after the show: the {rng.choice(SST_NOUNS)} felt {sst2.adjective(rng, good)}, "
                f"and {rng.choice(GLAD_ENDINGS if good else SAD_ENDINGS)}.")
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
        good = rng.random() < 0.5
        return (f"Some critics found the last {rng.choice(SST_GENRES)} they watched {rng.choice(SST_INTENSIFIERS)} "
                f"{rng.choice(SST_POSITIVE if good else SST_NEGATIVE)}, and "
                f"{rng.choice(GLAD_ENDINGS if good else SAD_ENDINGS)}.")
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
                       max_sentences: int = 8, format_fraction: float = 0.1,
                       task_fraction: float = 0.7) -> list[str]:
    """n_docs English documents for the base model's pre-training and its tokenizer.

    Three kinds, drawn at random:
      task_fraction    FLAN-like documents: 2-3 instances of one of the five task types under
                       prompts and answer words that no task uses (CORPUS_FORMATS: a review
                       followed by "Verdict: good/bad", a text and a claim followed by "Verdict:
                       correct/incorrect", facts written as "name: relation words: value" and
                       summarised, ...), so the base model can bring task competence (sentiment
                       words, verbalising facts, a word list of the source language) but not the
                       tasks' own formats. Their content comes from the task generators restricted
                       to the keys reserved for the corpus (CORPUS_SHARE) and reviews are put in the
                       past tense, so no training or test text of any task (any seed, any size)
                       occurs in the corpus;
      format_fraction  question/answer lines with the tasks' prompt cues and answer words and
                       random answers (_format_document): a prior over the answer words;
      the rest         generic sentences (3-8, templates used by no task generator), some of them
                       sentiment words in sentiment-bearing context.
    """
    if task_fraction + format_fraction > 1.0 or min(task_fraction, format_fraction) < 0:
        raise ValueError(f"task_fraction + format_fraction must lie in [0, 1], got {task_fraction} + {format_fraction}")
    rng = named_rng("corpus", seed)
    docs = []
    for _ in range(n_docs):
        u = rng.random()
        if u < task_fraction:
            docs.append(_task_document(rng))
        elif u < task_fraction + format_fraction:
            docs.append(_format_document(rng))
        else:
            docs.append(" ".join(_corpus_sentence(rng) for _ in range(rng.randint(min_sentences, max_sentences))))
    return docs


# Prompt cues and answer words of the tasks, used by the corpus's format documents
_FORMAT_CUES = (("Answer:", (" yes", " no")), ("Answer yes or no:", (" yes", " no")), ("Is it true?", (" yes", " no")))


def format_line(rng: random.Random) -> tuple[str, str]:
    """(prompt, answer) of one format line: a generic sentence, one of the tasks' prompt cues and a random
    answer word of that cue (so a base model starts with a sensible prior over the answer words, as a
    pre-trained LM would, and learns nothing about any task's labels)."""
    cue, words = rng.choice(_FORMAT_CUES)
    return f"Note: {_corpus_sentence(rng)}\n{cue}", rng.choice(words)


def _format_document(rng: random.Random) -> str:
    """2-4 format lines (format_line) separated by blank lines."""
    return "\n\n".join("".join(format_line(rng)) for _ in range(rng.randint(2, 4)))


# Corpus-only formats of the task types: (prompt, answer word per label or None for a text target).
# None of these prompts or answer words is used by TEMPLATES.
CORPUS_FORMATS: dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    "sst2": (("Critic: {sentence}\nVerdict:", ("bad", "good")),
             ("{sentence}\nDid the critic like it? Reply:", ("nope", "sure"))),
    "rte": (("Statement: {premise}\nClaim: {hypothesis}\nIs the claim supported by the statement?\nVerdict:",
             ("correct", "incorrect")),),
    "boolq": (("Query: {question}?\nArticle: {passage}\nReply:", ("incorrect", "correct")),),
    "webnlg": (("Record: {facts}\nSummary:", None),),
    "wmt16_de_en": (("Old tongue: {source}\nMeaning:", None),),
}
# how often each task type is drawn for a FLAN-like document
_CORPUS_TASK_WEIGHTS = {"sst2": 2, "rte": 3, "boolq": 3, "webnlg": 2, "wmt16_de_en": 2}
_PAST = {"is": "was", "gives": "gave", "offers": "offered"}


def _past(sentence: str) -> str:
    """A review sentence in the past tense ("is" -> "was", ...): no present-tense task sentence can
    then occur inside a corpus review."""
    return " ".join(_PAST.get(w, w) for w in sentence.split(" "))


def _camel_words(relation: str) -> str:
    """"birthPlace" -> "birth place"."""
    return "".join(" " + c.lower() if c.isupper() else c for c in relation).strip()


def corpus_record(task: str, rng: random.Random, label: int | None = None, max_tries: int = 1000) -> dict:
    """A record of `task` whose content keys are all reserved for the corpus (see CORPUS_SHARE)."""
    gen = GENERATORS[check_task(task)]
    for _ in range(max_tries):
        rec = gen(rng, label)
        if all(reserved(k) for k in rec.pop("keys")):
            return rec
    raise ValueError(f"{task}: no corpus record after {max_tries} tries")


def render_corpus_instance(task: str, rec: Mapping, fmt: int = 0) -> tuple[str, str]:
    """(prompt, target with leading space) of a corpus record under CORPUS_FORMATS[task][fmt]."""
    prompt, words = CORPUS_FORMATS[task][fmt]
    fields = dict(rec)
    if task == "sst2":
        fields["sentence"] = _past(rec["sentence"])
    if task == "webnlg":
        facts = []
        for t in rec["triples"]:
            subj, rel, obj = t.split(" | ")
            facts.append(f"{subj.replace('_', ' ')}: {_camel_words(rel)}: {obj.replace('_', ' ').strip(chr(34))}")
        fields["facts"] = "; ".join(facts)
    target = words[rec["label"]] if words else rec["output"]
    return prompt.format(**fields), " " + target


def corpus_instance(rng: random.Random, tasks: Sequence[str] | None = None,
                    weights: Mapping[str, float] | None = None) -> tuple[str, str]:
    """(prompt, target) of one corpus instance of a task type drawn by `weights` (default
    _CORPUS_TASK_WEIGHTS) among `tasks` (default: the keys of the weights), in a random corpus format."""
    w = weights or _CORPUS_TASK_WEIGHTS
    names = tuple(tasks or w)
    task = rng.choices(names, weights=[w.get(t, 0.0) for t in names])[0]
    label = rng.randrange(2) if task in CLASSIFICATION_TASKS else None
    rec = corpus_record(task, rng, label)
    return render_corpus_instance(task, rec, rng.randrange(len(CORPUS_FORMATS[task])))


def instruction_examples(n: int, seed: int = 0, weights: Mapping[str, float] | None = None,
                         format_fraction: float = 0.2) -> list[dict]:
    """n samples {"id", "context", "input"} for the base model's instruction stage (the loss on the target
    only): corpus instances (corpus_instance, task types drawn by `weights`, default _CORPUS_TASK_WEIGHTS)
    and, a `format_fraction` of them, format lines (format_line) that keep the tasks' answer words at a
    50/50 prior after the tasks' prompt cues. Disjoint from every task pool like the corpus."""
    rng = named_rng("instructions", seed)
    out = []
    for i in range(n):
        if rng.random() < format_fraction:
            prompt, target = format_line(rng)
        else:
            prompt, target = corpus_instance(rng, weights=weights)
        out.append({"id": i, "context": prompt, "input": prompt + target})
    return out


def _task_document(rng: random.Random) -> str:
    """2-3 instances of one task type under corpus formats, separated by blank lines."""
    names = tuple(_CORPUS_TASK_WEIGHTS)
    task = rng.choices(names, weights=[_CORPUS_TASK_WEIGHTS[t] for t in names])[0]
    return "\n\n".join("".join(corpus_instance(rng, (task,))) for _ in range(rng.randint(2, 3)))
