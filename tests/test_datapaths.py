"""gptfluence/datapaths.py: the data paths dicts (list and {train, test} forms), globs, test-id ranges."""

import json

import pytest

from gptfluence import datapaths as DP
from gptfluence.datapaths import load_data_paths_dict, parse_test_ranges, train_runs
from gptfluence.io import DataError


@pytest.fixture()
def runs(tmp_path):
    dirs = []
    for s in (1, 2, 3, 10):
        d = tmp_path / f"output_rte_seed-{s}"
        d.mkdir()
        dirs.append(str(d))
    return tmp_path, dirs


def test_list_and_dict_forms(runs):
    root, dirs = runs
    as_list = {"rte": dirs}
    assert train_runs(as_list, "rte") == (dirs, []) and DP.test_runs(as_list, "rte") == dirs
    as_dict = {"rte": {"train": [f"{root}/output_rte_seed-[1-3]"], "test": [dirs[3]]}}
    assert train_runs(as_dict, "rte") == (dirs[:3], [dirs[3]])
    assert DP.test_runs(as_dict, "rte") == [dirs[3]]


def test_load_forms_and_errors(runs, tmp_path):
    root, dirs = runs
    path = tmp_path / "paths.json"
    path.write_text(json.dumps({"rte": dirs}))
    assert load_data_paths_dict(str(path), {}) == {"rte": dirs}
    assert load_data_paths_dict(json.dumps({"rte": dirs}), {}) == {"rte": dirs}
    assert load_data_paths_dict(None, {"x": []}) == {"x": []}
    with pytest.raises(DataError, match="neither a JSON file nor inline JSON"):
        load_data_paths_dict("{oops", {})
    with pytest.raises(DataError, match="expected a JSON object"):
        load_data_paths_dict("[1, 2]", {})
    with pytest.raises(DataError, match="'mnli' is not in the data paths dict"):
        train_runs({"rte": dirs}, "mnli")
    with pytest.raises(DataError, match="no run directory matches"):
        train_runs({"rte": [f"{root}/nothing-*"]}, "rte")
    with pytest.raises(DataError, match="has no 'test' runs"):
        DP.test_runs({"rte": {"train": dirs}}, "rte")


def test_parse_test_ranges():
    assert parse_test_ranges(None, None) is None
    assert parse_test_ranges(0, 3) == [0, 1, 2, 3]
    assert parse_test_ranges("0,10", "1,11") == [0, 1, 10, 11]
    assert parse_test_ranges("(0, 10)", "(1, 11)") == [0, 1, 10, 11]  # python-fire's tuple print
    for start, end, msg in ((5, 2, "end is inclusive"), (0, None, "give both"), ("0,1", "3", "has 2 values"),
                            ("a", "b", "must be integers"), ("0,2", "3,5", "overlap")):
        with pytest.raises(DataError, match=msg):
            parse_test_ranges(start, end)
