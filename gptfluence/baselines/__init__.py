"""Gradient-based baselines of the paper, TracIn-CP and Grad-Dot (tracin: the maths; gradfiles: reading the
gradient features and learning rates the run maker records)."""

from .gradfiles import (
                        FINAL_FILE,
                        GRADS_DIR,
                        REMAKE_HINT,
                        GradFeatures,
                        StepGrads,
                        find_grads_dir,
                        list_grad_steps,
                        load_grad_features,
                        read_grads_file,
                        read_grads_lr,
                        read_log_learning_rates,
)
from .tracin import (
                        METHODS,
                        assign_checkpoints,
                        batch_weights,
                        check_metric,
                        cumulative_at,
                        example_influence,
                        fit_and_predict,
                        fit_rescaling,
                        method_name,
                        parse_num_checkpoints,
                        predict_trajectories,
                        run_influence,
                        runset_influence,
                        select_checkpoints,
                        self_influence_from_grads,
                        step_influence,
                        tracin_self_influence,
)

__all__ = ["FINAL_FILE", "GRADS_DIR", "GradFeatures", "METHODS", "REMAKE_HINT", "StepGrads", "assign_checkpoints",
           "batch_weights", "check_metric", "cumulative_at", "example_influence", "find_grads_dir", "fit_and_predict",
           "fit_rescaling", "list_grad_steps", "load_grad_features", "method_name", "parse_num_checkpoints",
           "predict_trajectories", "read_grads_file", "read_grads_lr", "read_log_learning_rates", "run_influence",
           "runset_influence", "select_checkpoints", "self_influence_from_grads", "step_influence",
           "tracin_self_influence"]
