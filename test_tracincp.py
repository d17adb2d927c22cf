"""TracIn-CP on held-out runs under the released test_tracincp.py flags (the work: utils/run_tracin.py).

    python test_tracincp.py --task rte --sim_name tracincp_sim --test_example_start_id 0 --test_example_end_id 199 \
        --save_dir output/rte/tracincp
Training runs come from train.py's data paths dict, test runs from test.py's (edit them there).
"""


def main(argv=None):
    import importlib.util
    from pathlib import Path

    from gptfluence.cli.published import test_tracincp
    tables = {}
    for name in ("train", "test"):  # the editable dicts at the top of train.py and test.py (data, not code)
        spec = importlib.util.spec_from_file_location(f"_{name}_paths", Path(__file__).with_name(f"{name}.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        tables[name] = mod.DATA_PATHS_DICT
    return test_tracincp(argv, tables["train"], tables["test"])


if __name__ == "__main__":
    from gptfluence.runtime import run_main
    run_main(main)
