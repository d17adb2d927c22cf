"""The task registry: each task's record generator and prompt templates, and the rendering of a record
into a sample (input = prompt + target)."""

from __future__ import annotations

import random
from typing import Callable, Mapping

from . import boolq, rte, sst2, webnlg, wmt16
from .spec import CLASSIFICATION_TASKS, CONTENT_FIELDS, check_task

# Prompt templates (index 0 is the task's default format; all are used in the FLAN-style mix)
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
GENERATORS: dict[str, Callable[[random.Random, int | None], dict]] = {
    "sst2": sst2.generate, "rte": rte.generate, "boolq": boolq.generate, "webnlg": webnlg.generate,
    "wmt16_de_en": wmt16.generate,
}

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
