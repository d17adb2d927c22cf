"""The task names, sizes and answer words every part of the task package shares."""

TASKS = ("sst2", "rte", "boolq", "webnlg", "wmt16_de_en")
# Test-set sizes of the paper (FLAN eval = the five concatenated = 1055 examples).
PAPER_TEST_SIZES = {"sst2": 200, "rte": 277, "boolq": 200, "webnlg": 178, "wmt16_de_en": 200}
DEFAULT_N_TRAIN = 200
FLAN_N_TRAIN = 1600
CLASSIFICATION_TASKS = ("sst2", "rte", "boolq")
# label (int, GLUE / SuperGLUE convention) -> answer word
LABEL_WORDS = {"sst2": ("negative", "positive"), "rte": ("yes", "no"), "boolq": ("no", "yes")}
# content fields of a record that the prompt templates read (besides "output")
CONTENT_FIELDS = {"sst2": ("sentence",), "rte": ("premise", "hypothesis"), "boolq": ("passage", "question"),
                  "webnlg": ("triples",), "wmt16_de_en": ("source",)}


def check_task(task: str) -> str:
    """Return `task` if known, else raise ValueError listing the known tasks."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return task
