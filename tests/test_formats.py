"""gptfluence/formats.py: the released pred_and_gt layout (written and read back, old layout too), the one log.out
parser in its strict and lenient modes, the released raw run names."""

import json

import pytest
import torch

from gptfluence.formats import raw_run_name, read_log, read_pred_and_gt, write_pred_and_gt
from gptfluence.io import DataError, write_jsonl


def test_pred_and_gt_roundtrip(tmp_path):
    true = torch.tensor([[[1.0, 0.9, 0.8], [2.0, 1.5, 1.2]], [[1.1, 1.0, 0.7], [2.1, 1.9, 1.4]]])
    pred = true + 0.01
    mask = torch.ones_like(true, dtype=torch.bool)
    mask[1, 0, 1] = False
    path = tmp_path / "pred_and_gt_loss_trajectories.out"
    write_pred_and_gt(path, ["/x/run_seed-1", "/x/run_seed-2"], torch.tensor([1, 2, 3]), torch.tensor([5, 9]),
                      true, pred, mask)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2 and [e["run"] for e in lines[0]] == ["run_seed-1", "run_seed-2"]
    assert lines[1][1]["gt_loss"] == pytest.approx([2.1, 1.9, 1.4]) and lines[0][1]["gt_loss"][1] is None
    back = read_pred_and_gt(path)
    assert set(back) == {("run_seed-1", 5), ("run_seed-1", 9), ("run_seed-2", 5), ("run_seed-2", 9)}
    assert back[("run_seed-2", 9)]["pred"] == pytest.approx((true[1, 1] + 0.01).tolist())
    old = tmp_path / "old.out"  # the one-object-per-line layout of earlier versions
    write_jsonl(old, [{"run": "r", "id": 3, "steps": [1, 2], "gt": [1.0, 0.5], "pred": [1.0, 0.6]}])
    assert read_pred_and_gt(old)[("r", 3)]["pred"] == [1.0, 0.6]
    released = tmp_path / "released.out"  # the released layout has no run names or ids: line order and run order
    write_jsonl(released, [[{"gt_loss": [1.0, 0.5], "pred_loss": [1.0, 0.6], "step": [1, 2]}]])
    assert read_pred_and_gt(released)[("run0", 0)]["gt"] == [1.0, 0.5]
    (tmp_path / "bad.out").write_text('[{"x": 1}]\n')
    with pytest.raises(DataError, match="bad.out:1: expected a list"):
        read_pred_and_gt(tmp_path / "bad.out")


def test_read_log_strict_and_lenient(tmp_path):
    path = tmp_path / "log.out"
    path.write_text("starting\n"
                    "  3%|| 1/30 [00:01<00:30]{'loss': 2.3, 'step': 1, 'samples_id': [1, 2], 'learning_rate': 5e-07}\n"
                    "{'loss': 2.2, 'step': 2, 'samples_id': [3, 'x']}\n"
                    "{'loss': 2.1, 'step': 3, 'samples_id': [4, 5], 'learning_rate': 4e-07}\n")
    with pytest.raises(DataError, match=r"log.out:3: step 2: expected non-negative integer training ids"):
        read_log(path)
    lenient = read_log(path, strict=False)
    assert lenient.samples_id == {1: [1, 2], 3: [4, 5]} and lenient.n_bad == 1
    assert lenient.learning_rates == {1: 5e-07, 3: 4e-07} and lenient.n_unrelated == 1


def test_released_raw_run_name():
    assert raw_run_name("rte", "EleutherAI/pythia-410m-deduped", 3, lr="5e-7", loss_output_token=False) == \
        "output_rte_bs-4_shot-200_sample-128_model-pythia-410m-deduped_lr-5e-7_weight-decay-0.001_epoch-3_seed-3"
