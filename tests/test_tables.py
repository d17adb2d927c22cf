"""gptfluence/tables.py: tables of metrics.json files, mean (std) over simulator seeds, the average column."""

import json

from gptfluence.tables import grid_table, load_metrics, method_label, method_tables


def m(task, sim, seed, mse, mae, rho, **kw):
    return {"metric": "loss", "task": task, "sim_name": sim, "seed": seed, "all_steps_mse_mean": mse,
            "all_steps_mae_mean": mae, "final_step_spearman_mean": rho, "diverged_trajectories": 0,
            "invalid_predictions": 0, **kw}


def write(tmp_path, ms):
    files = []
    for i, x in enumerate(ms):
        f = tmp_path / f"{i}.json"
        f.write_text(json.dumps(x))
        files.append(f)
    return files


def test_mean_and_std_over_seeds_and_average(tmp_path):
    ours = "anchor_lex_sim"
    files = write(tmp_path, [m("rte", ours, 1, 0.01, 0.1, 0.5), m("rte", ours, 2, 0.03, 0.2, 0.7),
                             m("sst2", ours, 1, 0.05, 0.3, 0.1), m("sst2", ours, 2, 0.07, 0.4, 0.3),
                             m("rte", "no_change", 42, 0.1, 0.3, 0.0, invalid_predictions=3)])
    text = method_tables(load_metrics(files))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| method")}
    assert rows["anchor_lex_sim (ours)"][0] == "0.0200 (0.0100) / 0.1500 (0.0500) / 0.6000 (0.1000)"
    # the average over tasks is taken per seed first: seed 1 (0.01 + 0.05) / 2, seed 2 (0.03 + 0.07) / 2
    assert rows["anchor_lex_sim (ours)"][2] == "0.0400 (0.0100) / 0.2500 (0.0500) / 0.4000 (0.1000)"
    assert rows["No change"][0] == "0.1000 / 0.3000 / 0.0000 (3 out of range)" and rows["No change"][1] == "-"
    assert "mean (std) over 1-2 simulator seed(s)" in text


def test_labels_and_grid():
    assert method_label({"sim_name": "enc_sim", "separate_proj": True}) == "GPTfluence (f!=g)"
    assert method_label({"sim_name": "enc_sim", "order_n": 3}) == "GPTfluence (n=3)"
    assert method_label({"sim_name": "tracin_cp(10)"}) == "TracIn-CP(10)"
    assert method_label({"sim_name": "mean_trajectory"}) == "Mean trajectory"
    text = grid_table("t", ["a", "b"], ["c1"], {("a", "c1"): [m("rte", "x", 1, 0.5, 0.5, 0.5)], ("b", "c1"): "no"})
    assert "| a | 0.5000 / 0.5000 / 0.5000 |" in text and "| b | no |" in text
