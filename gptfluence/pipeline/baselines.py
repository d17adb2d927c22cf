"""Score the gradient baselines (TracIn-CP, Grad-Dot) on held-out runs, like test_simulator scores a simulator.

    score_baselines(BaselineSpec(...)) -> metrics dict (written to <save_dir>/metrics.json)

One global affine rescaling of the cumulative influence is fitted by least squares on the training runs and
applied to the held-out runs, each rolled out from its true first value (gptfluence/baselines/tracin.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..io import DataError, write_json

log = logging.getLogger("gptfluence.pipeline")


@dataclass
class BaselineSpec:
    """method: tracin_cp or grad_dot; num_checkpoints: k for TracIn-CP (None: every step's checkpoint).
    raw_root: where the raw run dirs (grads/, log.out) are when the processed dirs have no copy."""
    method: str = "tracin_cp"
    num_checkpoints: int | None = 10
    task: str = "rte"
    train_dirs: list = field(default_factory=list)
    test_dirs: list = field(default_factory=list)
    test_ids: list | None = None
    raw_root: str | None = None
    save_dir: str = "output"
    diverge_bound: float = 1e4
    allow_nonfinite: bool = False
    progress: bool = True


def score_baselines(spec: BaselineSpec) -> dict:
    """Fit on spec.train_dirs, predict spec.test_dirs; writes metrics.json, pred_and_gt_loss_trajectories.out
    and env.json to spec.save_dir. Returns the metrics dict (the fields of test.py plus scale, offset)."""
    from .. import baselines as B
    from ..formats import write_pred_and_gt
    from ..metrics import evaluate
    from ..runs import load_runs
    from ..runtime import relative, write_env_json
    k = None if spec.method == "grad_dot" else spec.num_checkpoints
    name = B.method_name(spec.method, k)
    if not spec.train_dirs or not spec.test_dirs:
        raise DataError(f"{name}: needs training runs (to fit the rescaling) and test runs")
    overlap = sorted({Path(d).resolve() for d in spec.train_dirs} & {Path(d).resolve() for d in spec.test_dirs})
    if overlap:
        raise DataError(f"{overlap[0]}: listed as both a training and a test run (the rescaling must be fitted "
                        "on training runs only)")
    save_dir = Path(spec.save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    train_rs = load_runs(spec.train_dirs, metric="loss", test_ids=spec.test_ids, allow_nonfinite=spec.allow_nonfinite)
    test_rs = load_runs(spec.test_dirs, metric="loss", test_ids=train_rs.test_ids, allow_nonfinite=spec.allow_nonfinite)
    t0 = time.time()
    res = B.fit_and_predict(train_rs, test_rs, spec.method, k, spec.raw_root, progress=spec.progress)
    log.info("%s: fitted L_0 - L_t = a * I_t + c on %d training runs: a = %.6g, c = %.6g", name,
             len(spec.train_dirs), res["scale"], res["offset"])
    m = evaluate(res["pred"], test_rs.values, test_rs.mask, spec.diverge_bound, metric="loss")
    m.update(metric="loss", sim_name=name, task=spec.task, scale=res["scale"], offset=res["offset"],
             method=spec.method, num_checkpoints=("all" if k is None else k) if spec.method == "tracin_cp" else None,
             checkpoints_used=sorted({len(v) for v in res["checkpoints"].values()}),
             train_runs=[relative(d) for d in spec.train_dirs], test_runs=[relative(d) for d in spec.test_dirs],
             seconds=round(time.time() - t0, 3), save_dir=relative(save_dir))
    write_json(save_dir / "metrics.json", m)
    from dataclasses import asdict
    write_json(save_dir / "spec.json", asdict(spec))
    write_pred_and_gt(save_dir / "pred_and_gt_loss_trajectories.out", spec.test_dirs, test_rs.steps, test_rs.test_ids,
                      test_rs.values, res["pred"], test_rs.mask)
    write_env_json(save_dir, method=name)
    return m
