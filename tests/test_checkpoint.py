"""Checkpoints (gptfluence/checkpoint.py): compatibility, finished trainings, sample files."""



import pytest
import torch

from gptfluence.checkpoint import check_compatible
from gptfluence.io import DataError


def test_check_compatible_names_the_setting():
    ckpt = {"path": "x.pt", "spec": {"sim_name": "enc_sim", "encoder": "all-MiniLM-L6-v2"}, "n_train": 200}
    check_compatible(ckpt, sim_name="enc_sim", n_train=200, metric=None)
    with pytest.raises(DataError, match="sim_name: checkpoint has 'enc_sim', asked for 'original'"):
        check_compatible(ckpt, sim_name="original")
    with pytest.raises(DataError, match="n_train: checkpoint has 200, asked for 100"):
        check_compatible(ckpt, n_train=100)


def _trained(tmp_path, sim="original"):
    import json as _json

    from gptfluence.cli import train
    from gptfluence.synthetic import make_planted
    task = make_planted(tmp_path / "p", n_train=12, n_test=6, n_runs=4, sample=8, epochs=2, seed=1)
    runs = [str(d) for d in task.run_dirs]
    out = train.main(["--sim_name", sim, "--task", "planted", "--data_paths_dict",
                      _json.dumps({"planted": {"train": runs[:3], "test": runs[3:]}}), "--train_data_path",
                      str(task.train_path), "--eval_data_path", str(task.eval_path), "--valid_num", "1",
                      "--max_epoch", "2", "--output_dir", str(tmp_path / "out"), "--no_progress"])
    return task, out


def test_finished_flag_and_foreign_files(tmp_path):
    from gptfluence.checkpoint import check_finished, load_checkpoint
    _, out = _trained(tmp_path)
    ckpt = load_checkpoint(out)
    assert ckpt["finished"] and ckpt["spec"]["sim_name"] == "original"
    check_finished(ckpt)
    ckpt["finished"] = False
    with pytest.raises(DataError, match="did not finish .* --resume"):
        check_finished(ckpt)
    check_finished(ckpt, allow_unfinished=True)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "gptfluence-checkpoint/1"}, tmp_path / "old.pt")
    with pytest.raises(DataError, match="re-train it"):
        load_checkpoint(tmp_path / "old.pt")


def test_one_rule_for_other_sample_files(tmp_path):
    """Other sample files: Simfluence (free factors per id) is refused; a feature simulator re-embeds them."""
    from gptfluence.checkpoint import load_checkpoint, simulator_for_files
    task, out = _trained(tmp_path)
    changed = tmp_path / "eval2.json"
    changed.write_text(task.eval_path.read_text().replace("Note:", "Memo:"))
    ckpt = load_checkpoint(out)
    assert simulator_for_files(ckpt, str(task.train_path), str(task.eval_path), None, "cpu").name == "original"
    with pytest.raises(DataError, match="cannot simulate examples it never saw; the eval sample file"):
        simulator_for_files(ckpt, str(task.train_path), str(changed), None, "cpu")
    _, enc_out = _trained(tmp_path / "enc", "enc_sim")
    enc = load_checkpoint(enc_out)
    sim = simulator_for_files(enc, str(task.train_path), str(changed), None, "cpu", progress=False)
    assert not torch.equal(sim.test_emb, enc["state_dict"]["test_emb"])  # the new texts were embedded
    assert torch.equal(sim.train_emb, enc["state_dict"]["train_emb"])
