"""Rank training examples by their counterfactual influence on test examples, with a trained simulator.

    python influence.py --checkpoint output/rte/enc_sim_loss_seed42 --run_dir runs/rte/run_seed-28 --top_k 10
    python influence.py --checkpoint ... --curriculum my_batches.json --init_value 2.3 --test_ids 0-9
    python influence.py --checkpoint ... --run_dir ... --what_if edited.json --self_influence

For every training example i the simulator is rolled out along the curriculum with i removed
from every batch it is in (--mode remove) or added once more to them (--mode add; with
--insert_steps: inserted into those steps instead), for all examples and test examples at once.

Sign convention: influence > 0 means the training example HELPS the test example (its presence
lowers the loss, or raises BLEU / ROUGE). The "trajectory" score is the same difference averaged
over the simulated steps. Scores are in the metric's units, averaged over the given runs.

Writes to its own folder (default <checkpoint folder>/influence/<mode>-<hash>)
influence.json (sign convention, top-k helpful and harmful examples of every test
example with ids, scores and texts), influence.csv, args.json; with --what_if what_if.json and
what_if_<metric>.png; with --self_influence self_influence.csv; with --save_matrix influence_matrix.pt.
"""

from __future__ import annotations

from . import parser


def build_parser():
    p = parser(__doc__, "influence.py")
    a = p.add_argument
    a("--checkpoint", required=True, help="checkpoint file, or a run folder holding best-checkpoint.pt")
    a("--run_dir", nargs="+", default=None, help="processed run dir(s) whose curriculum (train_samples_id.json) "
      "and first recorded values are used; scores are averaged over the runs")
    a("--curriculum", default=None, help="curriculum JSON file instead of --run_dir: a list of "
      "{\"step\": s, \"samples_id\": [ids]} or of id lists (needs --init_value)")
    a("--init_value", type=float, default=None, help="initial value of every test example (the value after "
      "the first listed step); default: the run dir's first recorded values")
    a("--train_data_path", default=None, help="training pool sample file (default: the checkpoint's); must be "
      "the file the checkpoint was trained on")
    a("--eval_data_path", default=None, help="test set sample file (default: the checkpoint's); must be the "
      "file the checkpoint was trained on")
    a("--test_ids", default=None, help="test ids to score, e.g. '0-9,15' (default: all test ids of the run "
      "dir, or the whole test set with --curriculum)")
    a("--test_texts", default=None, help="file with one new test text per line, scored instead of test ids "
      "(feature simulators only; embedded with the checkpoint's encoder)")
    a("--top_k", type=int, default=10, help="helpful and harmful training examples listed per test example")
    a("--mode", default="remove", choices=["remove", "add"], help="counterfactual: remove the example from "
      "every batch it is in, or add it once more to them")
    a("--insert_steps", default=None, help="with --mode add: insert each example once into these steps "
      "(e.g. '10,20-30', steps of the curriculum) instead of duplicating it in its own batches")
    a("--renormalize", type=int, default=1, choices=[0, 1], help="1 (default): a changed batch keeps its mean "
      "factor (factors scaled by old / new batch size, as a mean-reduced training loss would); 0: plain sums, "
      "where removing an example also removes its share of the batch's alpha, an offset shared by all examples")
    a("--higher_is_better", default="auto", choices=["auto", "yes", "no"], help="whether a higher metric "
      "value is better (auto: no for loss, yes for BLEU / ROUGE)")
    a("--what_if", default=None, help="curriculum JSON file to simulate and compare with the baseline "
      "curriculum (same format as --curriculum)")
    a("--self_influence", action="store_true", help="also score every training example on itself as a test "
      "point (feature simulators only; initial value --init_value or the mean first value)")
    a("--save_matrix", action="store_true", help="also save the full [P, N] score matrices (influence_matrix.pt)")
    a("--chunk_size", type=int, default=256, help="training examples per recurrence pass (bounds memory)")
    a("--plot_examples", type=int, default=6, help="test examples plotted with --what_if (0: none)")
    a("--text_chars", type=int, default=60, help="characters of each text in the printed table")
    a("--save_dir", default=None, help="output folder (default <checkpoint folder>/influence/<mode>-<hash of the "
      "settings>: one folder per distinct call; earlier outputs in the folder are removed first)")
    a("--embedding_cache", default="default", help="on-disk embedding cache folder (default: $GPTFLUENCE_CACHE/"
      "embeddings, else .cache/gptfluence/embeddings)")
    a("--device", default="cpu", help="cpu, cuda, cuda:N or a GPU index")
    a("--allow_nonfinite", action="store_true", help="mask NaN/inf values in the runs instead of refusing them")
    a("--allow_unfinished", action="store_true", help="use the checkpoint of a training that did not finish")
    a("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    a("--no_progress", action="store_true", help="no progress bars")
    return p


def main(argv=None):
    """Parse, compute, print the table. Returns the influence.json dict."""
    from dataclasses import fields

    from ..pipeline.influence import InfluenceSpec, influence_report
    from ..runtime import set_threads
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    names = {f.name for f in fields(InfluenceSpec)}
    kw = {k: v for k, v in vars(args).items() if k in names}
    return influence_report(InfluenceSpec(**kw, progress=not args.no_progress))
