"""The run maker: fine-tune a causal LM over many curricula and record test metrics every step.

    encoding     tokenised samples, scored positions, padded batches
    scoring      output-token losses, training loss, label-word accuracy
    gradients    projected last-layer gradient features (TracIn-CP / Grad-Dot)
    generation   decoding, BLEU, ROUGE
    curriculum   which examples a run sees, in which order and batch
    maker        RunMaker (one run) and make_runs (many), raw GPTDynamics layout
"""

from .curriculum import format_lr, make_curriculum
from .encoding import Encoded, collate, encode_samples
from .generation import bleu_score, generate_outputs, generation_metrics, rouge_scores
from .gradients import GradProjector, grad_features, parse_grad_steps
from .maker import (
                    DONE_FILE,
                    GENERATION_TASKS,
                    RESULT_KEYS,
                    RUN_ARGS_FILE,
                    RunMaker,
                    check_output_dir,
                    is_generation_task,
                    make_runs,
                    run_dir_name,
)
from .scoring import (
                    label_word_accuracy,
                    label_word_losses,
                    predictions_from_losses,
                    score_losses,
                    score_losses_naive,
                    scored_hidden,
                    token_losses,
                    train_loss,
)

__all__ = ["DONE_FILE", "Encoded", "GENERATION_TASKS", "GradProjector", "RESULT_KEYS", "RUN_ARGS_FILE", "RunMaker",
           "bleu_score", "check_output_dir", "collate", "encode_samples", "format_lr",
           "generate_outputs", "generation_metrics", "grad_features", "is_generation_task", "label_word_accuracy",
           "label_word_losses", "make_curriculum", "make_runs", "parse_grad_steps", "predictions_from_losses",
           "rouge_scores", "run_dir_name", "score_losses", "score_losses_naive", "scored_hidden",
           "token_losses", "train_loss"]
