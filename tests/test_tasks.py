"""Tests of gptfluence.tasks (built-in generators, FLAN mix, importers) and utils/prepare_tasks.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gptfluence import tasks as T
from gptfluence.formats import FLAN_TEST_OFFSETS
from gptfluence.io import DataError, load_samples, sample_target
from gptfluence.tasks import boolq, rte, sst2

REPO = Path(__file__).resolve().parent.parent
SMALL = {"sst2": 60, "rte": 60, "boolq": 60, "webnlg": 40, "wmt16_de_en": 40}


@pytest.mark.parametrize("task", T.TASKS)
def test_deterministic_by_seed(task):
    a = T.build_task(task, n_train=30, n_test=20, seed=1)
    b = T.build_task(task, n_train=30, n_test=20, seed=1)
    c = T.build_task(task, n_train=30, n_test=20, seed=2)
    assert a == b
    inputs_a = {s["input"] for s in a[0]}
    inputs_c = {s["input"] for s in c[0]}
    assert len(inputs_a & inputs_c) <= 3  # a different seed gives (almost) entirely different data


@pytest.mark.parametrize("task", T.TASKS)
def test_default_sizes_ids_disjoint_prefix(task):
    train, test = T.build_task(task)
    assert len(train) == 200
    assert len(test) == T.PAPER_TEST_SIZES[task]
    assert [s["id"] for s in train] == list(range(200))
    assert [s["id"] for s in test] == list(range(len(test)))
    assert not {s["input"] for s in train} & {s["input"] for s in test}
    assert len({s["input"] for s in train}) == 200  # no duplicate within a set
    for s in train + test:
        assert s["input"].startswith(s["context"])
        assert sample_target(s) == s["target"] == " " + s["output"]
        assert s["task"] == task
        assert len(s["input"]) < 400  # fits 64-128 tokens


def test_test_set_independent_of_train_size():
    _, test_a = T.build_task("rte", n_train=10, n_test=50, seed=0)
    _, test_b = T.build_task("rte", n_train=100, n_test=50, seed=0)
    assert test_a == test_b


@pytest.mark.parametrize("task", T.CLASSIFICATION_TASKS)
def test_label_balance_and_words(task):
    train, test = T.build_task(task, n_train=101, n_test=50, seed=0)
    assert sum(s["label"] for s in train) in (50, 51)
    assert sum(s["label"] for s in test) == 25
    for s in train:
        assert s["output"] == T.LABEL_WORDS[task][s["label"]]
        assert s["clean_label"] == s["label"]


@pytest.mark.parametrize("fraction,expected", [(0.4, 80), (0.25, 50), (0.0, 0), (1.0, 200)])
def test_label_noise_fraction_exact(fraction, expected):
    clean, test_clean = T.build_task("sst2", seed=0)
    noisy, test_noisy = T.build_task("sst2", seed=0, label_noise=fraction)
    flipped = [s for s in noisy if s["label"] != s["clean_label"]]
    assert len(flipped) == expected
    assert test_noisy == test_clean  # test set untouched
    for c, n in zip(clean, noisy):
        assert n["context"] == c["context"]  # same prompts, only targets differ
        assert n["clean_label"] == c["label"]
        assert n["target"] == " " + T.LABEL_WORDS["sst2"][n["label"]]
        assert n["input"] == n["context"] + n["target"]
        assert n.get("flipped", False) == (n["label"] != c["label"])


def test_label_noise_rejected_for_generation_tasks():
    with pytest.raises(ValueError, match="classification"):
        T.build_task("webnlg", n_train=10, n_test=5, label_noise=0.2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        T.build_task("sst2", n_train=10, n_test=5, label_noise=1.5)


def test_generation_targets_nontrivial():
    train, _ = T.build_task("webnlg", seed=0)
    lengths = [len(s["output"].split()) for s in train]
    assert min(lengths) >= 4 and sum(lengths) / len(lengths) > 10
    assert {len(s["triples"]) for s in train} == {1, 2, 3}
    assert len({s["output"] for s in train}) == len(train)
    for s in train:
        subject = s["triples"][0].split(" | ")[0].replace("_", " ")
        assert subject.lower() in s["output"].lower()  # the text names the subject
    train, _ = T.build_task("wmt16_de_en", seed=0)
    src_len = [len(s["source"].split()) for s in train]
    assert min(src_len) <= 5 and max(src_len) >= 14  # varied lengths
    reordered = sum(s["source"].split()[:2] != s["output"].split()[:2] for s in train)
    assert reordered > 100  # translation is not a copy of the source
    assert all(s["source"] != s["output"] for s in train)


def test_wmt_reordering_rules():
    rows = [r for r in T.build_records("wmt16_de_en", n_train=300, n_test=0, seed=4)[0]]
    perfect = [r for r in rows if " hat " in r["source"] and "," not in r["source"] and " und " not in r["source"]]
    assert perfect
    for r in perfect:  # participle last in the source, right after "has" (+ adverb) in English
        assert r["source"].rstrip(".").split()[-1].startswith("ge") or r["source"].rstrip(".").split()[-1] in (
            "verkauft", "versteckt", "repariert")
        assert " has " in r["output"]


def test_flan_mix_offsets_and_templates():
    train, test = T.build_flan_mix(seed=0)
    assert len(train) == 1600 and len(test) == 1055
    assert [s["id"] for s in train] == list(range(1600))
    assert [s["id"] for s in test] == list(range(1055))
    assert T.flan_offsets(T.PAPER_TEST_SIZES) == FLAN_TEST_OFFSETS
    for task, offset in FLAN_TEST_OFFSETS.items():
        first = test[offset]
        assert first["task"] == task and first["local_id"] == 0
        assert sum(s["task"] == task for s in train) == 320
    for s in test:
        assert s["id"] == FLAN_TEST_OFFSETS[s["task"]] + s["local_id"]
        assert s["input"].startswith(s["context"])
    # eval content = the fine-tuning test sets, in order
    _, rte_test = T.build_task("rte")
    flan_rte = [s for s in test if s["task"] == "rte"]
    assert [s["premise"] for s in flan_rte] == [s["premise"] for s in rte_test]
    assert [s["output"] for s in flan_rte] == [s["output"] for s in rte_test]
    # several templates per task, and no eval content in train
    for task in T.TASKS:
        assert len({s["template"] for s in train if s["task"] == task}) == len(T.TEMPLATES[task]) >= 3
    key = lambda s: T.record_key(s["task"], s)  # noqa: E731
    assert not {key(s) for s in train} & {key(s) for s in test}
    assert T.build_flan_mix(n_train=50, n_test=SMALL, seed=3) == T.build_flan_mix(n_train=50, n_test=SMALL, seed=3)


def test_pretraining_corpus_disjoint_and_shares_vocabulary():
    docs = T.pretraining_corpus(400, seed=0)
    assert docs == T.pretraining_corpus(400, seed=0)
    assert docs != T.pretraining_corpus(400, seed=1)
    assert len(docs) == 400 and all(2 <= d.count(".") for d in docs)
    text = "\n".join(docs)
    corpus_words = set(text.lower().replace(".", " ").replace(",", " ").split())
    task_words = set()
    for task in T.TASKS:
        train, test = T.build_task(task, seed=0)
        for s in train + test:
            for field in T.CONTENT_FIELDS[task]:
                value = s[field]
                parts = value if isinstance(value, list) else [value]
                for part in parts:
                    assert part not in text, (task, part)
            if task in ("webnlg", "wmt16_de_en"):
                assert s["output"] not in text
            task_words |= set(s["output"].lower().replace(".", " ").replace(",", " ").split())
    assert len(corpus_words & task_words) > 150


def test_pretraining_corpus_is_disjoint_by_construction():
    """Pools never hold a record with a content key reserved for the corpus; corpus records only hold such keys;
    so a pool (any seed, any size) and the corpus cannot share a review, a source sentence, an RTE person or
    hypothesis, or a BoolQ / WebNLG entity."""
    import random

    for task in T.TASKS:
        rng = random.Random(5)
        reserved = [T.reserved(k) for _ in range(300) for k in T.GENERATORS[task](rng, rng.randrange(2)).pop("keys")]
        assert 0.15 < sum(reserved) / len(reserved) < 0.35  # about 1 in CORPUS_SHARE
        for seed in (0, 7):
            train, test = T.build_task(task, 150, 50, seed=seed)
            pool_keys = set()
            for s in train + test:
                pool_keys |= {json.dumps(s.get(f)) for f in T.CONTENT_FIELDS[task]}
            crng = random.Random(seed)
            for _ in range(100):
                rec = T.corpus_record(task, crng, crng.randrange(2) if task in T.CLASSIFICATION_TASKS else None)
                assert json.dumps(rec[T.CONTENT_FIELDS[task][0]]) not in pool_keys
    rng = random.Random(0)
    for _ in range(50):
        rec = rte.generate(rng, 0)
        assert any(T.reserved(k) for k in rec["keys"]) or T.record_key("rte", rec)  # keys are strings
    assert T.pretraining_corpus(50, seed=3, task_fraction=1.0, format_fraction=0.0)[0].count("\n\n") >= 1
    with pytest.raises(ValueError, match="must lie in"):
        T.pretraining_corpus(5, task_fraction=0.8, format_fraction=0.4)


def test_instruction_examples():
    ex = T.instruction_examples(200, seed=1)
    assert ex == T.instruction_examples(200, seed=1) and ex != T.instruction_examples(200, seed=2)
    assert [e["id"] for e in ex] == list(range(200))
    assert all(e["input"].startswith(e["context"]) and len(e["input"]) > len(e["context"]) for e in ex)
    formats = [e for e in ex if e["context"].startswith("Note: ")]
    assert 20 < len(formats) < 60  # format lines: about format_fraction = 0.2 of them
    answers = {e["input"][len(e["context"]):] for e in ex if e["context"].endswith("Verdict:")}
    assert answers <= {" good", " bad", " correct", " incorrect"} and len(answers) >= 3
    only_rte = T.instruction_examples(30, seed=1, weights={"rte": 1.0}, format_fraction=0.0)
    assert all(e["context"].startswith("Statement: ") for e in only_rte)


@pytest.mark.parametrize("task", T.TASKS)
def test_generators_deterministic_across_seeds_and_sizes(task):
    a_train, a_test = T.build_task(task, n_train=40, n_test=25, seed=11)
    b_train, b_test = T.build_task(task, n_train=40, n_test=25, seed=11)
    assert json.dumps(a_train) == json.dumps(b_train) and json.dumps(a_test) == json.dumps(b_test)
    _, c_test = T.build_task(task, n_train=5, n_test=25, seed=11)
    assert c_test == a_test


def test_sst2_label_follows_from_sentiment_words():
    train, test = T.build_task("sst2", n_train=1000, n_test=200, seed=3)
    for s in train + test:
        assert T.sst2_rule_label(s["sentence"]) == s["label"], s["sentence"]
    # most reviews hold sentiment words of the label only; a minority negate or contrast the other polarity
    pos, neg = set(sst2.SST_POSITIVE), set(sst2.SST_NEGATIVE)
    words = lambda s: set(s["sentence"].rstrip(".").replace(",", " ").split())  # noqa: E731
    single = sum(not (words(s) & (neg if s["label"] else pos)) for s in train)
    assert 0.88 < single / len(train) < 0.97
    assert T.sst2_rule_label("the plot is not dull.") == 1 and T.sst2_rule_label("the plot is dull.") == 0
    assert T.sst2_rule_label("although the cast is superb, the script is awful.") == 0
    assert T.sst2_rule_label("the plot is long.") is None
    # the same sentence frame with the other polarity's words flips the label
    assert T.sst2_rule_label("a charming comedy with a very witty script.") == 1
    assert T.sst2_rule_label("a tedious comedy with a very lame script.") == 0


def test_rte_and_boolq_labels_follow_from_content():
    import re

    train, _ = T.build_task("rte", n_train=600, n_test=10, seed=2)
    base = {form: v[1] for v in rte.RTE_VERBS for form in (v[0], v[2])}  # "stole", "stolen" -> "steal"
    negation = re.compile(r" did not | never |" + "|".join(re.escape(r) for r in rte.RTE_REASONS))
    for s in train:
        hyp, prem = s["hypothesis"], s["premise"]
        if negation.search(hyp):
            assert s["label"] == 1  # a negated event or an unstated reason is never entailed
        elif hyp.startswith(("Someone ", "Something happened")) or hyp.endswith(" by someone."):
            assert s["label"] == 0  # a generalisation of the event is entailed
        else:  # a restatement: entailed iff every content word of the hypothesis is in the premise
            stop = {"a", "an", "is", "was", "by", "in", "on"}
            content = {base.get(w, w) for w in re.findall(r"[A-Za-z0-9]+", hyp.lower())} - stop
            premise_words = {base.get(w, w) for w in re.findall(r"[A-Za-z0-9]+", prem.lower())}
            novel = content - premise_words
            assert (s["label"] == 1) == bool(novel), (prem, hyp, novel)
    train, _ = T.build_task("boolq", n_train=600, n_test=10, seed=2)
    judged = 0
    for s in train:
        for kind, (yes_words, no_words, sentence, question) in boolq.BOOLQ_JUDGEMENTS.items():
            if s["question"].endswith(question.split("{name}")[1]):
                last = s["passage"].rstrip(".").split()[-1]
                assert last in (yes_words if s["label"] else no_words), (s["passage"], s["question"])
                judged += 1
    assert 0.85 < judged / len(train) < 0.95  # BOOLQ_JUDGEMENT_SHARE = 0.9; the rest ask about stated details


def test_task_file_paths():
    root = Path("data")
    assert T.task_file_paths(root, "sst2", 200, 200) == (
        root / "sft_tasks/sst2/sst2_train_0-199.json", root / "sft_tasks/sst2/sst2_validation_0-199.json")
    assert T.task_file_paths(root, "rte", 400, 277) == (
        root / "sft_tasks/rte/rte_0_399_train.json", root / "sft_tasks/rte/rte_0_276_eval.json")
    assert T.task_file_paths(root, "boolq")[1].name == "boolq_validation_0-199.json"
    assert T.task_file_paths(root, "webnlg", 400)[1] == root / "sft_tasks/webnlg/webnlg_dev_0-177.json"
    assert T.task_file_paths(root, "wmt16_de_en")[1].name == "wmt16_de_en_test_0-199.json"
    assert T.task_file_paths(root, "flan", 1600) == (
        root / "it_tasks/flan_train_0_1599.json", root / "it_tasks/flan_eval_0_1054.json")


def test_ensure_task_files(tmp_path):
    train_path, eval_path = T.ensure_task_files(tmp_path, "webnlg", 12, 7, seed=2)
    assert train_path.name == "webnlg_train_0-11.json" and eval_path.name == "webnlg_dev_0-6.json"
    assert load_samples(train_path) == json.loads(json.dumps(T.build_task("webnlg", 12, 7, 2)[0]))
    train_path.write_text('{"id": 0, "input": "kept", "context": ""}\n')
    T.ensure_task_files(tmp_path, "webnlg", 12, 7, seed=2)
    assert load_samples(train_path)[0]["input"] == "kept"
    flan_train, flan_eval = T.ensure_task_files(tmp_path, "flan", 20, 4)
    assert flan_eval.name == "flan_eval_0_19.json"
    assert [s["id"] for s in load_samples(flan_eval)] == list(range(20))


def test_unknown_task_lists_known_tasks():
    for call in (lambda: T.build_task("mnli"), lambda: T.task_file_paths("d", "mnli"),
                 lambda: T.import_local("mnli", "x.csv")):
        with pytest.raises(ValueError, match="known tasks: sst2, rte, boolq, webnlg, wmt16_de_en"):
            call()


# ---------------------------------------------------------------------------------------------
# importers
# ---------------------------------------------------------------------------------------------

def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_import_local_csv_tsv_jsonl(tmp_path):
    sst = _write(tmp_path / "sst.tsv", "sentence\tlabel\na gorgeous , witty film .\t1\n"
                                      "a dull mess .\t0\nthe plot is thin .\tnegative\n")
    samples = T.import_local("sst2", sst)
    assert len(samples) == 3 and [s["id"] for s in samples] == [0, 1, 2]
    by_sentence = {s["sentence"]: s for s in samples}
    assert by_sentence["a gorgeous , witty film ."]["input"] == "Review: a gorgeous , witty film .\nSentiment: positive"
    assert by_sentence["the plot is thin ."]["label"] == 0

    rte = _write(tmp_path / "rte.csv", "sentence1,sentence2,label\n"
                                      "\"Ann, a baker, sold a car.\",Ann sold a car.,entailment\n"
                                      "Bo left.,Bo stayed.,not_entailment\n")
    samples = T.import_local("rte", rte)
    assert sorted((s["hypothesis"], s["label"], s["target"]) for s in samples) == [
        ("Ann sold a car.", 0, " yes"), ("Bo stayed.", 1, " no")]

    boolq = _write(tmp_path / "boolq.jsonl",
                   json.dumps({"passage": "The sky is blue.", "question": "is the sky blue?", "answer": True}) + "\n")
    s = T.import_local("boolq", boolq)[0]
    assert s["context"] == "Passage: The sky is blue.\nQuestion: is the sky blue?\nAnswer:" and s["target"] == " yes"

    web = _write(tmp_path / "web.jsonl", json.dumps({"triples": ["A_b | country | C", "A_b | leader | D"],
                                                     "text": "A b is in C and led by D."}) + "\n" +
                 json.dumps({"triples": "X | birthPlace | Y", "text": "X was born in Y."}) + "\n")
    samples = T.import_local("webnlg", web)
    assert {s["input"] for s in samples} == {
        "Triples: A_b | country | C ; A_b | leader | D\nText: A b is in C and led by D.",
        "Triples: X | birthPlace | Y\nText: X was born in Y."}

    wmt = _write(tmp_path / "wmt.csv", "de,en\nDer Hund schläft.,The dog sleeps.\n")
    s = T.import_local("wmt16_de_en", wmt)[0]
    assert s["target"] == " The dog sleeps." and s["source"] == "Der Hund schläft."

    renamed = _write(tmp_path / "renamed.csv", "review,polarity\nnice film,1\n")
    s = T.import_local("sst2", renamed, columns={"sentence": "review", "label": "polarity"})[0]
    assert s["label"] == 1


def test_import_local_errors(tmp_path):
    bad = _write(tmp_path / "bad.csv", "text,polarity\nfine,1\n")
    with pytest.raises(DataError) as e:
        T.import_local("sst2", bad)
    msg = str(e.value)
    assert "bad.csv" in msg and "label" in msg and "text, polarity" in msg
    with pytest.raises(DataError, match=r"rte\.csv.*premise/sentence1.*hypothesis/sentence2"):
        T.import_local("rte", _write(tmp_path / "rte.csv", "label\n0\n"))
    with pytest.raises(DataError, match=r"labels\.csv:3: bad sst2 label 'maybe'"):
        T.import_local("sst2", _write(tmp_path / "labels.csv", "sentence,label\nok,1\nhm,maybe\n"))
    with pytest.raises(DataError, match=r"tri\.jsonl:1: expected a triple"):
        T.import_local("webnlg", _write(tmp_path / "tri.jsonl", json.dumps({"triples": "a | b", "text": "t"}) + "\n"))
    with pytest.raises(DataError, match="unsupported file type"):
        T.import_local("sst2", _write(tmp_path / "x.xml", "<a/>"))
    with pytest.raises(DataError, match="file not found"):
        T.import_local("sst2", tmp_path / "missing.csv")


def test_import_local_selection_and_split(tmp_path):
    rows = "".join(f"sentence {i} is {'good' if i % 2 else 'bad'}\t{i % 2}\n" for i in range(40))
    path = _write(tmp_path / "many.tsv", "sentence\tlabel\n" + rows + "sentence 0 is bad\t0\n")  # 1 duplicate
    assert len(T.import_local("sst2", path)) == 40
    picked = T.import_local("sst2", path, n=10, seed=1)
    assert picked == T.import_local("sst2", path, n=10, seed=1) and len(picked) == 10
    train, test = T.split_disjoint("sst2", T.import_local("sst2", path), 25, 15, seed=0)
    assert [s["id"] for s in train] == list(range(25)) and [s["id"] for s in test] == list(range(15))
    assert not {s["input"] for s in train} & {s["input"] for s in test}
    with pytest.raises(DataError, match="only 40 distinct"):
        T.import_local("sst2", path, n=41)


def test_hf_rows_converted_like_local_rows():
    """The hub path (not reachable here) goes through hf_row_to_fields + convert_row."""
    rows = {
        "sst2": {"sentence": "a fine film ", "label": 1, "idx": 0},
        "rte": {"premise": "P.", "hypothesis": "H.", "label": 1, "idx": 0},
        "boolq": {"passage": "Pa.", "question": "is it", "label": 0, "idx": 0},
        "webnlg": {"modified_triple_sets": {"mtriple_set": [["A | b | C"]]}, "lex": {"text": ["A b C."]}},
        "wmt16_de_en": {"translation": {"de": "Hallo Welt.", "en": "Hello world."}},
    }
    targets = {"sst2": " positive", "rte": " no", "boolq": " no", "webnlg": " A b C.", "wmt16_de_en": " Hello world."}
    for task, row in rows.items():
        rec = T.convert_hf_rows(task, [row])[0]
        assert T.make_sample(task, rec, 0)["target"] == targets[task]
    with pytest.raises(DataError, match=r"glue/sst2:test row 0: bad sst2 label -1"):
        T.convert_hf_rows("sst2", [{"sentence": "x", "label": -1}], source="glue/sst2:test")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def _run_cli(*args):
    return subprocess.run([sys.executable, str(REPO / "utils" / "prepare_tasks.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_cli_writes_loadable_files_and_keeps_existing(tmp_path):
    out = tmp_path / "data"
    r = _run_cli("--out_dir", str(out), "--n_train", "40", "--n_test", "30", "--flan", "--flan_n_train", "100")
    assert r.returncode == 0, r.stderr
    for task in T.TASKS:
        train_path, eval_path = T.task_file_paths(out, task, 40, 30)
        train, test = load_samples(train_path), load_samples(eval_path)
        assert (len(train), len(test)) == (40, 30)
        assert train == json.loads(json.dumps(T.build_task(task, 40, 30, 0)[0]))
    flan_train, flan_eval = T.task_file_paths(out, "flan", 100, 150)
    assert len(load_samples(flan_train)) == 100 and len(load_samples(flan_eval)) == 150
    assert "wrote" in r.stderr + r.stdout

    sst_train = T.task_file_paths(out, "sst2", 40, 30)[0]
    sst_train.write_text('{"id": 0, "input": "sentinel", "context": ""}\n')
    r = _run_cli("--out_dir", str(out), "--tasks", "sst2", "--n_train", "40", "--n_test", "30")
    assert r.returncode == 0 and "kept" in r.stderr + r.stdout
    assert load_samples(sst_train)[0]["input"] == "sentinel"
    r = _run_cli("--out_dir", str(out), "--tasks", "sst2", "--n_train", "40", "--n_test", "30", "--overwrite")
    assert r.returncode == 0 and len(load_samples(sst_train)) == 40


def _import_cli():
    from gptfluence.cli import prepare_tasks
    return prepare_tasks


def test_cli_in_process_noise_local_and_errors(tmp_path):
    cli = _import_cli()
    out = tmp_path / "d"
    assert cli.main(["--out_dir", str(out), "--tasks", "sst2,webnlg", "--n_train", "20", "--n_test", "10",
                     "--label_noise", "0.4"]) == 0
    noisy = load_samples(out / "sft_tasks/sst2/sst2_mislabelled-0.4_train_0-19.json")
    assert sum(s["label"] != s["clean_label"] for s in noisy) == 8
    assert len(load_samples(out / "sft_tasks/webnlg/webnlg_train_0-19.json")) == 20  # no noise there

    rows = "".join(f"the film number {i} is {'good' if i % 2 else 'bad'}\t{i % 2}\n" for i in range(30))
    local = _write(tmp_path / "sst.tsv", "sentence\tlabel\n" + rows)
    assert cli.main(["--out_dir", str(out), "--tasks", "sst2", "--source", "local", "--local_files",
                     f"sst2={local}", "--n_train", "20", "--n_test", "10", "--overwrite"]) == 0
    train = load_samples(out / "sft_tasks/sst2/sst2_train_0-19.json")
    test = load_samples(out / "sft_tasks/sst2/sst2_validation_0-9.json")
    assert len(train) == 20 and len(test) == 10
    assert not {s["input"] for s in train} & {s["input"] for s in test}

    with pytest.raises(DataError, match="no file for task rte"):
        cli.main(["--out_dir", str(out), "--tasks", "rte", "--source", "local", "--local_files", f"sst2={local}"])
    with pytest.raises(ValueError, match="known tasks"):
        cli.main(["--out_dir", str(out), "--tasks", "sst3"])
    assert cli.parse_local_files("sst2=a.tsv, rte=b.csv") == {"sst2": "a.tsv", "rte": "b.csv"}


def test_cli_help_and_import_does_no_work(tmp_path):
    r = _run_cli("--help")
    assert r.returncode == 0 and "--label_noise" in r.stdout and "--local_files" in r.stdout
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('p', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)")
    r = subprocess.run([sys.executable, "-c", code, str(REPO / "utils" / "prepare_tasks.py")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert os.listdir(tmp_path) == [] and r.stdout == "" and r.stderr == ""
