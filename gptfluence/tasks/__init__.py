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

Modules: spec (names, sizes, answer words), words (word lists in data/*.json and text helpers),
one generator per task type (sst2, rte, boolq, webnlg, wmt16), registry (generators, templates,
rendering), build (seeded disjoint task sets, label noise), files (GPTDynamics file names), flan
(the instruction-tuning mix), corpus (the base model's pre-training corpus and instruction stage),
importers (local files and the hub).
"""

from .build import CORPUS_SHARE, apply_label_noise, build_records, build_task, named_rng, record_key, reserved
from .corpus import (
                        CORPUS_FORMATS,
                        corpus_instance,
                        corpus_record,
                        format_line,
                        instruction_examples,
                        pretraining_corpus,
)
from .files import ensure_task_files, task_file_paths
from .flan import build_flan_mix, flan_offsets
from .importers import (
                        DEFAULT_COLUMNS,
                        HF_DATASETS,
                        HF_SPLITS,
                        convert_hf_rows,
                        convert_row,
                        hf_row_to_fields,
                        import_hf,
                        import_local,
                        split_disjoint,
)
from .registry import GENERATORS, TEMPLATES, make_sample, render
from .spec import (
                        CLASSIFICATION_TASKS,
                        CONTENT_FIELDS,
                        DEFAULT_N_TRAIN,
                        FLAN_N_TRAIN,
                        LABEL_WORDS,
                        PAPER_TEST_SIZES,
                        TASKS,
                        check_task,
)
from .sst2 import rule_label as sst2_rule_label

__all__ = [
    "CLASSIFICATION_TASKS", "CONTENT_FIELDS", "CORPUS_FORMATS", "CORPUS_SHARE", "DEFAULT_COLUMNS", "DEFAULT_N_TRAIN",
    "FLAN_N_TRAIN", "GENERATORS", "HF_DATASETS", "HF_SPLITS", "LABEL_WORDS", "PAPER_TEST_SIZES", "TASKS", "TEMPLATES",
    "apply_label_noise", "build_flan_mix", "build_records", "build_task", "check_task", "convert_hf_rows",
    "convert_row", "corpus_instance", "corpus_record", "ensure_task_files", "flan_offsets", "format_line",
    "hf_row_to_fields", "import_hf", "import_local", "instruction_examples", "make_sample", "named_rng",
    "pretraining_corpus", "record_key", "render", "reserved", "split_disjoint", "sst2_rule_label", "task_file_paths",
]
