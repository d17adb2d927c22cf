"""anchor_sim: the mean trajectory, plus what each batch moves, fitted in closed form on whole rollouts.

For test example z' in a run with curriculum c (steps t = 0..T-1, t = 0 the first recorded value):

    phi_t(z') = m_t(z') + kappa_t e_0(z') + sum_{tau=1..t} sum_{i in c_tau} B_i(z', tau)
    B_i(z', tau) = p_i^T (W_1 + s_tau W_2) q_z'          s_tau = tau / (T - 1)

- m_t(z'): the mean trajectory of z' over the training runs (the strongest batch-blind predictor). A test
  example absent from them gets a_t + b_t phi_0(z'): the least-squares line from a first value to the value at
  step t over the training runs' (run, example) pairs (a high first loss tends to fall further).
- e_0(z') = phi_0(z') - m_0(z'): the run's deviation at the first recorded step, and kappa_t how much of it is
  still there at step t (one coefficient per step: a transient that fades, or a lasting offset).
- B_i(z', tau): what training example i in the batch of step tau adds, a bilinear form of frozen text features:
  p_i = the training example's features centred over the training pool, q_z' = [the test example's features, 1].
  Features: the first k principal components of the frozen encoder's embeddings of the example's full text and
  of its target (the target carries the label of a classification example, the reference of a generation one),
  fitted on the training pool and the test set together. s_tau lets the effect of a step change over the run
  (the learning rate decays).

- d_i: a test example that IS training example i (the same input and target text: identical embeddings, e.g. the
  pool examples taken as their own test points for self-influence) also gets d_i for every time i was trained on
  up to step t beyond the pool's average count up to t (centred over the pool, as p_i is: under random sampling
  the expected addition is 0, and the mean trajectory keeps the average). What an example does to itself is not
  what its features say it does to others: a mislabelled example's own loss falls when it is trained on, because
  nothing else teaches its label. One coefficient per training example, fitted after the rest on what the rest
  leaves, its ridge strength (or none at all) chosen by cross-validation over runs (kept only if its gain beats
  the gain's standard error, as for the batch term). Without such test examples (the usual case) there is
  nothing to fit and nothing changes.

Every prediction is linear in (W_1, W_2, kappa), and so is the all-steps rollout error: the parameters are the
exact ridge solution of the rollout MSE on the training runs (no teacher forcing, no gradient descent, no
random initialisation: the same data give the same simulator whatever the seed). The ridge strength, and
whether e_0 is used at all, are chosen by K-fold cross-validation over training runs (the mean trajectory
recomputed without the held-out fold). The candidates include W = 0: when the batches explain nothing that
generalises to held-out runs, the simulator is the mean trajectory (with or without e_0). A batch term is kept
only if its cross-validated gain over the best setting without one beats the standard error of that gain over
the folds (the one-standard-error rule; see _one_se_choice for why). Then the guard (_guard) judges the whole fit,
these choices included, on folds of runs it did not choose on (nested cross-validation) and drops every batch
term unless its gain over the mean trajectory there beats the gain's standard error.

The model is additive in the batches: influence is exact and closed form (see effect_factors), and an example's
effect does not depend on the path. Predictions are kept inside the metric's valid range (loss >= 0, BLEU in
[0, 100], ROUGE in [0, 1]).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import replace

import torch

from ..encoders import LEXICAL_BUCKETS, LEXICAL_DIM, lexical_idf, weight_lexical
from ..io import DataError
from .base import batch_counts
from .enc_sim import FeatureSimulator

log = logging.getLogger(__name__)

D = torch.float64
ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, math.inf)
SELF_ALPHAS = (10.0, 1e2, 1e3, 1e4, 1e5, 1e6, math.inf)


class AnchorSim(FeatureSimulator):
    name = "anchor_sim"
    trainable = False
    additive = True
    embed_texts = "input+target"

    def __init__(self, train_emb, test_emb, order: int = 1, k: int = 16, metric: str = "loss", n_steps: int = 1,
                 folds: int = 8):
        super().__init__(train_emb, test_emb, 1)
        if train_emb.shape[1] - self.extra_dim <= 0 or (train_emb.shape[1] - self.extra_dim) % 2:
            raise ValueError(f"{self.name} expects [input embedding, target embedding"
                             f"{', lexical features' if self.extra_dim else ''}] rows, got width {train_emb.shape[1]}")
        self.k, self.metric, self.folds = int(k), str(metric), int(folds)
        K = 2 * self.k
        half = self._half
        self.register_buffer("pca_mean", torch.zeros(2, half))
        self.register_buffer("pca_proj", torch.zeros(2, half, self.k))
        self.register_buffer("pca_scale", torch.ones(2))
        self.register_buffer("mean", torch.full((self.n_test, n_steps), float("nan")))
        self.register_buffer("seen_curve", torch.zeros(n_steps))
        # unseen test examples: phi_t = a_t + b_t phi_0 (rows a, b), fitted over the training runs' seen examples
        self.register_buffer("unseen_coef", torch.full((2, n_steps), float("nan"), dtype=D))
        self.register_buffer("steps", torch.zeros(n_steps, dtype=torch.long))
        self.register_buffer("W", torch.zeros(2 * K, K + 1, dtype=D))
        self.register_buffer("kappa", torch.zeros(n_steps, dtype=D))
        self.register_buffer("chosen", torch.zeros(2, dtype=D))  # (ridge strength, e_0 used)
        # d_i: what training example i adds to a test example with its very text, per time it is trained on
        self.register_buffer("self_effect", torch.zeros(self.n_train, dtype=D))
        # the guard's verdict (see _guard): mean gain per fold over the mean trajectory, its standard error, kept
        self.register_buffer("guard", torch.zeros(3, dtype=D))

    @classmethod
    def create(cls, spec, n_train=None, n_test=None, train_emb=None, test_emb=None):
        return cls(train_emb, test_emb, metric=spec.metric)

    #: columns after the [input, target] embeddings that are not encoder embeddings (AnchorLexSim's lexical ones)
    extra_dim = 0

    @property
    def _half(self) -> int:
        return (self.dim - self.extra_dim) // 2

    def config(self) -> dict:
        return {**super().config(), "k": self.k, "metric": self.metric, "n_steps": int(self.steps.numel()),
                "folds": self.folds}

    # ------------------------------------------------------------------------------------------ features
    def _pca_fit(self) -> None:
        """Principal components of the input and target embeddings over the training pool and the test set."""
        half = self._half
        H = torch.cat([self.train_emb, self.test_emb]).double()
        for j in range(2):
            X = _unit(H[:, j * half:(j + 1) * half])
            mu = X.mean(0)
            _, S, V = torch.linalg.svd(X - mu, full_matrices=False)
            # components without variance (e.g. every example has the same target text) carry nothing but
            # rounding noise: they are left out, not standardised into unit-variance noise
            n = int(((S > 1e-3 * S[0]) & (S > 1e-6)).sum()) if S.numel() else 0
            proj = torch.zeros(half, self.k, dtype=D)
            proj[:, :min(self.k, n)] = V[:min(self.k, n)].T
            self.pca_mean[j], self.pca_proj[j] = mu.float(), proj.float()
            self.pca_scale[j] = float(((X - mu) @ proj).std()) if n else 1.0

    def _features(self, emb: torch.Tensor) -> torch.Tensor:
        """[n, 2k] standardised principal-component features of [input, target] embeddings."""
        half = self._half
        parts = [(_unit(emb[:, j * half:(j + 1) * half].double()) - self.pca_mean[j].double())
                 @ self.pca_proj[j].double() / float(self.pca_scale[j]) for j in range(2)]
        return torch.cat(parts, 1)

    def _p(self) -> torch.Tensor:
        z = self._features(self.train_emb)
        return z - z.mean(0)

    def _q(self, test_rows) -> torch.Tensor:
        z = self._features(self.test_emb[test_rows.to(self.test_emb.device)])
        return torch.cat([z, torch.ones(len(z), 1, dtype=D, device=z.device)], 1)

    def _step_counts(self, batches: torch.Tensor) -> torch.Tensor:
        """[R, T, P]: how often each training example is in the batch of step t (0 at t = 0: the first recorded
        value is given, not simulated)."""
        R, T, _ = batches.shape
        counts = batch_counts(batches.reshape(R * T, -1), self.n_train).reshape(R, T, -1).to(D)
        counts[:, 0] = 0
        return counts

    def _cumulative(self, batches: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """U [R, T, 2K]: sum over steps 1..t of the batch's feature sum times [1, s_tau] (0 at t = 0)."""
        S = self._step_counts(batches) @ self._p().to(batches.device)  # [R, T, K]
        if scale is not None:
            S = S * scale.to(D)[..., None]
        s = torch.arange(S.shape[1], dtype=D, device=S.device) / max(S.shape[1] - 1, 1)
        return torch.cat([S, S * s[None, :, None]], -1).cumsum(1)

    # ------------------------------------------------------------------------------------------ fitting
    def fit_data(self, train) -> None:
        """The fit (see _fit), then the guard: the whole fit is kept only if, done again without each fold of
        training runs, it predicts that fold better than the mean trajectory of the other folds, by more than the
        standard error of that gain over the folds; otherwise every batch term is dropped and the simulator is the
        mean trajectory (see _guard)."""
        if train.mask.shape[0] < 2:
            raise DataError(f"{self.name} needs at least 2 training runs (it cross-validates over runs)")
        self._guard(train, self._fit(train))

    def _fit(self, train) -> torch.Tensor | None:
        """PCA features, mean trajectory, then the ridge solution with cross-validated settings. Returns the
        per-fold gains over the mean trajectory of the fit done without each fold, where computed on the way
        (AnchorLexSim's outer cross-validation does), else None. Needs >= 2 runs (fit_data checks; the guard and
        AnchorLexSim's lexical check never ask for fewer)."""
        self._pca_fit()
        v, mask = train.values.double(), train.mask.clone()
        U = self._cumulative(train.batches)                           # [R, T, 2K]
        q = self._q(train.test_rows)                                   # [N, K+1]
        folds = _folds(v.shape[0], self.folds)
        A_all = None if _separable(mask) else _gram(U, q, mask)
        errs = torch.zeros(2, len(ALPHAS), len(folds), dtype=D)        # [e_0 off / on, ridge strength, fold]
        for f, held in enumerate(folds):
            keep = [r for r in range(v.shape[0]) if r not in held]
            m = _mean(v[keep], mask[keep])
            # one eigendecomposition of the kept runs' Gram matrix serves every ridge strength and both e_0 settings
            eig = _Spectrum(U[keep], q, mask[keep], None if A_all is None else A_all - _gram(U[held], q, mask[held]))
            # one set of statistics serves both settings (without e_0, _solve reads only b)
            stats = _normal_equations(U[keep], q, v[keep], mask[keep], m, True, gram=False)
            for e0_on in (False, True):
                for a, alpha in enumerate(ALPHAS):
                    W, kap = _solve(stats, alpha, e0_on, eig)
                    errs[int(e0_on), a, f] = _sq_error(U[held], q, v[held], mask[held], m, W, kap)
        alpha, e0_on = _one_se_choice(errs)
        m = _mean(v, mask)
        stats = _normal_equations(U, q, v, mask, m, e0_on, gram=False)
        W, kap = _solve(stats, alpha, e0_on, _Spectrum(U, q, mask, A_all))
        self._set_mean(train)
        self.W, self.kappa = W, kap
        self.chosen = torch.tensor([alpha, float(e0_on)], dtype=D)
        log.info("anchor_sim: ridge strength %s, first-value deviation %s (chosen by %d-fold cross-validation "
                 "over %d training runs)", alpha, "used" if e0_on else "not used", len(folds), v.shape[0])
        self._fit_self_effect(train, folds)
        return None

    # ------------------------------------------------------------------------------------------ the guard
    def _batch_terms(self) -> bool:
        """True when the fit has anything beyond the mean trajectory."""
        return bool((self.W != 0).any() or (self.kappa != 0).any() or (self.self_effect != 0).any())

    def _drop_batch_terms(self, train) -> None:
        """The mean trajectory alone (of the values themselves: AnchorLexSim fits it on what its lexical term
        leaves)."""
        self.W, self.kappa = torch.zeros_like(self.W), torch.zeros_like(self.kappa)
        self.self_effect = torch.zeros_like(self.self_effect)
        self._set_mean(train)

    def _set_mean(self, train) -> None:
        """The mean trajectory of the training runs' test rows, the seen examples' mean curve and the first-value
        regression for unseen examples."""
        v, mask = train.values.double(), train.mask
        m = _mean(v, mask)
        table = torch.full((self.n_test, m.shape[1]), float("nan"), dtype=torch.float32, device=v.device)
        table[train.test_rows] = m.float()
        self.mean, self.steps = table, train.steps.clone()
        self.seen_curve = m.mean(0).float()
        self.unseen_coef = _first_value_regression(v, mask)

    def _fit_for_guard(self, train) -> None:
        """The fit the guard repeats without each fold of runs when the fit did not judge itself on the way."""
        self._fit(train)

    def _fold_gains(self, train) -> torch.Tensor:
        """[folds]: for each fold of training runs, the squared error over its runs (steps >= 1) of the mean
        trajectory of the other folds less that of the fit (_fit_for_guard) done on the other folds. The fitted
        state is restored afterwards."""
        state = {k: t.clone() for k, t in self.state_dict().items()}
        v, mask = train.values.double(), train.mask
        folds = _folds(v.shape[0], self.folds)
        gains = torch.zeros(len(folds), dtype=D)
        for f, held in enumerate(folds):
            keep = [r for r in range(v.shape[0]) if r not in held]
            with _quiet():
                self._fit_for_guard(train.runs(keep))
            test = train.runs(held)
            pred = self.predict(test.batches, test.values[..., 0], test.test_rows, test.steps, clip=False)
            ok = mask[held].clone()
            ok[..., 0] = False
            m = _mean(v[keep], mask[keep])
            gains[f] = float((((m - v[held]) ** 2) * ok).sum() - (((pred - v[held]) ** 2) * ok).sum())
        self.load_state_dict(state)
        return gains

    def _guard(self, train, gains: torch.Tensor | None) -> None:
        """Keep the fit's batch terms only if the fit, as a whole procedure (its own cross-validated choices
        included), beats the mean trajectory on runs it did not see: the per-fold gains of a nested cross-
        validation (_fold_gains) must average more than their standard error. The choices inside the fit are made
        on the same folds they are then judged on, so a batch term that won them by a hair can lose on new runs
        (on the default preset's boolq runs, one of the four held-out blocks lost 17% to the mean trajectory
        that way); judged as a whole on folds it did not choose on, such a fit falls back to the mean
        trajectory. Recorded in `guard`: (mean gain, standard error, kept)."""
        if not self._batch_terms():
            self.guard = torch.tensor([0.0, 0.0, 1.0], dtype=D)
            return
        folds = _folds(train.values.shape[0], self.folds)
        if train.values.shape[0] - max(len(f) for f in folds) < 2:  # a fit without a fold needs >= 2 runs
            self.guard = torch.tensor([math.nan, math.nan, 1.0], dtype=D)
            log.info("%s: %d training runs are too few to check the fit against the mean trajectory on runs it did "
                     "not see (the guard needs >= 3); batch terms kept unchecked", self.name, train.values.shape[0])
            return
        if gains is None:
            gains = self._fold_gains(train)
        gain = float(gains.mean())
        se = float(gains.std() / math.sqrt(gains.numel())) if gains.numel() > 1 else 0.0
        kept = gain > se
        if not kept:
            self._drop_batch_terms(train)
        self.guard = torch.tensor([gain, se, float(kept)], dtype=D)
        log.info("%s: the whole fit against the mean trajectory on folds of runs it did not see: gain per fold %.4g, "
                 "standard error %.4g: %s", self.name, gain, se,
                 "batch terms kept" if kept else "batch terms dropped (the mean trajectory)")

    def _fit_self_effect(self, train, folds) -> None:
        """d_i (see the module docstring) on what the fitted model leaves of the training runs: for each training
        example i, the ridge regression of those residuals of the test examples identical to i on the number of times
        i was trained on so far. The strength (or no term: inf) by cross-validation over the same folds of runs, kept
        only if its gain beats the gain's standard error over the folds."""
        self.self_effect = torch.zeros(self.n_train, dtype=D, device=self.W.device)
        match = self._duplicates(train.test_rows)                                   # [N, P]
        if not bool(match.any()):
            return
        v, mask = train.values.double(), train.mask.clone()
        mask[..., 0] = False
        res = (v - AnchorSim.predict(self, train.batches, train.values[..., 0], train.test_rows, train.steps,
                                     clip=False)) * mask                            # [R, N, T]
        C = self._trained_so_far(train.batches)                                     # [R, T, P], centred
        m = match.to(D)
        xy = torch.einsum("rtp,np,rnt->rp", C, m, res)                              # per run: sum x r
        xx = torch.einsum("rtp,np,rnt->rp", C ** 2, m, mask.to(D))                  # per run: sum x^2

        def solve(runs, alpha):
            return xy[runs].sum(0) / (xx[runs].sum(0) + alpha) if math.isfinite(alpha) else torch.zeros_like(xy[0])

        def sq_error(runs, d):  # squared error of the held-out runs' residuals less d's part
            pred = torch.einsum("rtp,np,p->rnt", C[runs], m, d)
            return float((((res[runs] - pred) ** 2) * mask[runs]).sum())

        errs = torch.zeros(len(SELF_ALPHAS), len(folds), dtype=D)
        for f, held in enumerate(folds):
            keep = [r for r in range(v.shape[0]) if r not in held]
            for a, alpha in enumerate(SELF_ALPHAS):
                errs[a, f] = sq_error(held, solve(keep, alpha))
        best = int(torch.argmin(errs.sum(1)))
        diff = errs[-1] - errs[best]
        se = float(diff.std() / math.sqrt(diff.numel())) if diff.numel() > 1 else 0.0
        alpha = SELF_ALPHAS[best] if float(diff.mean()) > se else math.inf
        self.self_effect = solve(list(range(v.shape[0])), alpha)
        log.info("anchor_sim: %d test examples are training examples; their own effect d_i: ridge strength %s "
                 "(cross-validated gain %.4g, standard error %.4g), mean d %.4g", int(match.any(1).sum()), alpha,
                 float(diff.mean()), se, float(self.self_effect[match.any(0)].mean()))

    def _duplicates(self, test_rows) -> torch.Tensor:
        """[N, P] bool: test row n has training example p's text (identical input and target embeddings)."""
        w = 2 * self._half
        a = self.test_emb[test_rows.to(self.test_emb.device), :w]
        b = self.train_emb[:, :w]
        # candidates agree on the first columns ([N, P, 16] at most); only they are compared in full, in chunks, so
        # that a large pool and test set never need an [N, P, width] comparison
        n, p = (a[:, None, :16] == b[None, :, :16]).all(-1).nonzero(as_tuple=True)
        out = torch.zeros(len(a), len(b), dtype=torch.bool, device=a.device)
        for k in range(0, len(n), 4096):
            nk, pk = n[k:k + 4096], p[k:k + 4096]
            same = (a[nk] == b[pk]).all(-1)
            out[nk[same], pk[same]] = True
        return out.to(self.W.device)

    def _trained_so_far(self, batches: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """[R, T, P]: how often each training example was trained on in steps 1..t (0 at t = 0), less the pool's
        average of that count."""
        counts = self._step_counts(batches)
        if scale is not None:
            counts = counts * scale.to(D)[..., None]
        counts = counts - counts.mean(-1, keepdim=True)
        return counts.cumsum(1)

    # ------------------------------------------------------------------------------------------ predicting
    def _check_steps(self, T: int, steps) -> None:
        if T != self.steps.numel() or (steps is not None and not torch.equal(steps.cpu(), self.steps.cpu())):
            raise DataError(f"anchor_sim was fitted on runs recorded at steps {self.steps[0]}..{self.steps[-1]} "
                            f"({self.steps.numel()} steps); these runs have {T}: use runs of the same shape")

    def _anchor(self, init: torch.Tensor, test_rows: torch.Tensor) -> torch.Tensor:
        """m_t + kappa_t e_0 for seen test rows; the seen mean curve shifted to the first value for unseen ones.
        [R, N, T] float64."""
        table = self.mean[test_rows.to(self.mean.device)].double()    # [N, T]
        seen = torch.isfinite(table).all(1)
        init = init.double()
        out = table[None] + (init - table[None, :, 0])[..., None] * self.kappa[None, None]
        if not bool(seen.all()):
            coef = self.unseen_coef.to(out.device)
            if bool(torch.isfinite(coef).all()):
                out[:, ~seen] = coef[0] + coef[1] * init[:, ~seen, None]
            else:  # a checkpoint saved before the regression: the seen examples' mean curve, shifted
                curve = self.seen_curve.double()
                out[:, ~seen] = init[:, ~seen, None] + (curve - curve[0])[None, None]
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints saved before unseen_coef existed keep the shifted mean curve for unseen examples
        state_dict.setdefault(prefix + "unseen_coef", torch.full_like(self.unseen_coef, float("nan")))
        # and those saved before the self term have none
        state_dict.setdefault(prefix + "self_effect", torch.zeros_like(self.self_effect))
        # and those saved before the guard were not checked by it
        state_dict.setdefault(prefix + "guard", torch.zeros_like(self.guard))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def predict(self, batches, init, test_rows, steps=None, batch_scale=None, clip: bool = True):
        """Predictions [R, N, T] (clip=False: before they are kept inside the metric's range, float64)."""
        self._check_steps(batches.shape[1], steps)
        U = self._cumulative(batches, batch_scale)
        pred = self._anchor(init, test_rows) + torch.einsum("rta,ac,zc->rzt", U, self.W, self._q(test_rows))
        if bool((self.self_effect != 0).any()):
            own = self._duplicates(test_rows).to(D) * self.self_effect[None]           # [N, P]
            if bool((own != 0).any()):
                pred = pred + torch.einsum("rtp,np->rnt", self._trained_so_far(batches, batch_scale).to(pred.device),
                                           own.to(pred.device))
        return self.clip(pred).to(init.dtype) if clip else pred

    def clip(self, pred: torch.Tensor) -> torch.Tensor:
        """Keep predictions inside the metric's valid range."""
        return _clip(pred, self.metric)

    def effect_factors(self, test_rows: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(base [P, N], slope [P, N], s [T]): what training example i adds to test row n at step t is
        base[i, n] + s[t] slope[i, n], kept as two [P, N] tables (a [T, P, N] one would not fit at scale)."""
        K = 2 * self.k
        p, q = self._p(), self._q(test_rows).T
        s = torch.arange(T, dtype=D, device=p.device) / max(T - 1, 1)
        base = p @ self.W[:K] @ q
        if bool((self.self_effect != 0).any()):
            own = (self._duplicates(test_rows).to(D) * self.self_effect[None]).to(base.device)   # [N, P]
            base = base + own.T - own.sum(1)[None] / self.n_train  # example j: d_j on its own text, less the mean
        return base, p @ self.W[K:] @ q, s

    def forget_test_examples(self, n_test: int) -> None:
        self.mean = torch.full((n_test, self.steps.numel()), float("nan"), device=self.mean.device)

    def set_examples(self, train_emb=None, test_emb=None):
        super().set_examples(train_emb, test_emb)
        if test_emb is not None:
            self.forget_test_examples(test_emb.shape[0])
        if train_emb is not None:  # d_i belongs to training example i: another pool has none fitted
            self.self_effect = torch.zeros(self.n_train, dtype=D, device=self.self_effect.device)

    def factor_tables(self, test_idx):
        raise DataError("anchor_sim has step-dependent factors: use effect_factors (gptfluence.influence does)")


class AnchorLexSim(AnchorSim):
    """anchor_sim plus a word-overlap batch effect: what training example i in the batch of step tau adds to test
    example z' also holds

        sum_c (u_c + s_tau u'_c) L_c(i, z')

    with L_c the TF-IDF cosine similarity of the two examples' bags of words (c: context, target, whole input; hashed,
    encoders.lexical_features; inverse document frequencies over the training pool and the test set, as the
    principal components are), centred over the training pool. Weighting by inverse document frequency lets a
    shared rare word (an entity, a place) count and a template word every example has not: on the default preset's
    held-out generation runs a pilot regression gained 32% / 28% over the mean trajectory with it (webnlg /
    wmt16_de_en loss) and 11% / 13% with plain counts. Six coefficients, so they can be learnt from a
    handful of runs where the bilinear form's hundreds cannot: on the default preset's generation runs, whose
    run-to-run differences the curriculum sets (utils/sensitivity.py), the overlap of words (entity names, phrases)
    says which test examples a run's batches help. Fitted first (ridge over runs, its strength, or no lexical
    effect at all, chosen by the same cross-validation over training runs), then anchor_sim's fit on what is left;
    an outer cross-validation of both fits keeps the lexical term only if it lowers the held-out error once the
    bilinear part is fitted too, by more than the standard error of that gain over the folds (on the repo's
    synthetic planted runs it does not, and the fit is anchor_sim's).
    Prediction and influence add the two parts (influence stays exact and closed form)."""

    name = "anchor_lex_sim"
    embed_texts = "input+target+lexical"
    extra_dim = LEXICAL_DIM
    LEX_ALPHAS = (1e-2, 1.0, 1e2, 1e4, math.inf)

    def __init__(self, train_emb, test_emb, **kw):
        super().__init__(train_emb, test_emb, **kw)
        self.register_buffer("lex_w", torch.zeros(6, dtype=D))
        self.register_buffer("lex_chosen", torch.tensor(math.inf, dtype=D))
        self.register_buffer("lex_idf", torch.ones(3, LEXICAL_BUCKETS, dtype=D))

    def _idf_fit(self) -> None:
        """Inverse document frequencies of the lexical buckets over the training pool and the test set (kept when
        new test texts are set later, like the principal components)."""
        off = self.dim - self.extra_dim
        self.lex_idf = lexical_idf(torch.cat([self.train_emb[:, off:], self.test_emb[:, off:]]))

    def _lex_kernel(self, test_rows: torch.Tensor) -> torch.Tensor:
        """[P, N, 3] TF-IDF cosine similarities of the bags of words (context, target, whole input), centred over the
        pool."""
        off = self.dim - self.extra_dim
        a = weight_lexical(self.train_emb[:, off:], self.lex_idf)
        b = weight_lexical(self.test_emb[test_rows.to(self.test_emb.device), off:], self.lex_idf)
        K = torch.einsum("pcb,ncb->pnc", a, b)
        return K - K.mean(0, keepdim=True)

    def _lex_cumulative(self, batches: torch.Tensor, test_rows: torch.Tensor,
                        scale: torch.Tensor | None = None) -> torch.Tensor:
        """F [R, N, T, 6]: sum over steps 1..t of the batch's kernel sum times [1, s_tau] (0 at t = 0)."""
        counts = self._step_counts(batches)
        if scale is not None:
            counts = counts * scale.to(D)[..., None]
        S = torch.einsum("rtp,pnc->rntc", counts, self._lex_kernel(test_rows).to(counts.device))
        s = torch.arange(S.shape[2], dtype=D, device=S.device) / max(S.shape[2] - 1, 1)
        return torch.cat([S, S * s[None, None, :, None]], -1).cumsum(2)

    @staticmethod
    def _lex_stats(F, r, mask) -> tuple[torch.Tensor, torch.Tensor]:
        """(X^T X, X^T y) of the lexical ridge over the recorded entries: computed once, solved for every strength."""
        X, y = F[mask], r[mask]
        return X.T @ X, X.T @ y

    @staticmethod
    def _lex_solve(stats, alpha: float) -> torch.Tensor:
        gram, rhs = stats
        if math.isinf(alpha):
            return torch.zeros_like(rhs)
        return torch.linalg.solve(gram + alpha * torch.eye(len(rhs), dtype=D, device=rhs.device), rhs)

    def _lex_alpha(self, train, F) -> float:
        """The lexical ridge strength (inf: no lexical term) with the lowest cross-validated error of the lexical term
        alone on the deviation from the mean trajectory."""
        v, mask = train.values.double(), train.mask
        errs = torch.zeros(len(self.LEX_ALPHAS), dtype=D)
        for held in _folds(v.shape[0], self.folds):
            keep = [r for r in range(v.shape[0]) if r not in held]
            m = _mean(v[keep], mask[keep])
            stats = self._lex_stats(F[keep], v[keep] - m, mask[keep])
            for a, alpha in enumerate(self.LEX_ALPHAS):
                w = self._lex_solve(stats, alpha)
                errs[a] += float((((v[held] - m - F[held] @ w) ** 2) * mask[held]).sum())
        return self.LEX_ALPHAS[int(torch.argmin(errs))]

    def _fit_both(self, train, F, alpha: float) -> None:
        """The lexical coefficients at ridge strength alpha, then anchor_sim's fit on the values less them (F may be
        None when alpha is inf: no lexical term)."""
        v, mask = train.values.double(), train.mask
        self.lex_w = (self._lex_solve(self._lex_stats(F, v - _mean(v, mask), mask), alpha) if math.isfinite(alpha)
                      else torch.zeros_like(self.lex_w))
        self.lex_chosen = torch.tensor(alpha, dtype=D)
        AnchorSim._fit(self, train if F is None else replace(train, values=(v - F @ self.lex_w).to(train.values.dtype)))

    def _fit(self, train) -> torch.Tensor | None:
        """The lexical term's strength by cross-validation; then, whether the lexical term helps once anchor_sim's
        bilinear part is fitted after it (an outer cross-validation of both fits over the same folds: the two
        parts can explain the same movement, and fitted in sequence the first may take what the second would
        model better; kept only if the gain beats its standard error over the folds); then the chosen fit on all
        training runs. Returns the outer cross-validation's per-fold gains of the chosen fit over the mean
        trajectory, for the guard (None when the lexical term was never a candidate: the guard then runs its own)."""
        self._idf_fit()
        F = self._lex_cumulative(train.batches, train.test_rows)
        alpha = self._lex_alpha(train, F)
        gains = None
        if math.isfinite(alpha) and train.values.shape[0] < 3:
            # the check below fits anchor_sim without a fold of runs, which needs 2 runs to cross-validate over
            log.info("anchor_lex_sim: %d training runs are too few to check the lexical term (>= 3 needed): not used",
                     train.values.shape[0])
            alpha = math.inf
        if math.isfinite(alpha):
            folds = _folds(train.values.shape[0], self.folds)
            err = torch.zeros(3, len(folds), dtype=D)               # [with, without, the mean trajectory] x fold
            v, mask = train.values.double(), train.mask
            for f, held in enumerate(folds):
                keep = [r for r in range(train.values.shape[0]) if r not in held]
                part, test = train.runs(keep), train.runs(held)
                ok = test.mask.clone()
                ok[..., 0] = False
                err[2, f] = float((((_mean(v[keep], mask[keep]) - v[held]) ** 2) * ok).sum())
                for u, use in enumerate((True, False)):
                    with _quiet():
                        self._fit_both(part, F[keep], alpha if use else math.inf)
                    pred = self.predict(test.batches, test.values[..., 0], test.test_rows, test.steps, clip=False)
                    err[u, f] = float((((pred - test.values.double()) ** 2) * ok).sum())
            # the one-standard-error rule: the lexical term stays only if its gain over the folds is larger than
            # the gain's standard error (a tie within fold noise keeps the simpler model: the extra term would then
            # reorder near-tied test examples for no measured gain)
            diff = err[1] - err[0]
            gain, se = float(diff.mean()), float(diff.std() / math.sqrt(len(folds))) if len(folds) > 1 else 0.0
            log.info("anchor_lex_sim: cross-validated squared error with the lexical term %.6g, without %.6g (gain "
                     "per fold %.4g, standard error %.4g)", float(err[0].sum()), float(err[1].sum()), gain, se)
            if gain <= se:
                alpha = math.inf
            gains = err[2] - err[0 if math.isfinite(alpha) else 1]
        self._fit_both(train, F, alpha)
        log.info("anchor_lex_sim: lexical ridge strength %s, coefficients %s", alpha,
                 [round(float(x), 5) for x in self.lex_w])
        return gains

    def _batch_terms(self) -> bool:
        return super()._batch_terms() or bool((self.lex_w != 0).any())

    def _fit_for_guard(self, train) -> None:
        """The guard repeats the fit itself only when no lexical term was a candidate on all training runs (else
        _fit's outer cross-validation has judged the chosen fit already): without the lexical term, as chosen on all
        runs (as that outer cross-validation keeps the lexical strength chosen on all runs). Repeating the lexical
        choice in every fold as well cost 20x the fit (rte: 0.25 -> 5.0 s) for a choice already made."""
        self._fit_both(train, None, math.inf)

    def _drop_batch_terms(self, train) -> None:
        super()._drop_batch_terms(train)
        self.lex_w = torch.zeros_like(self.lex_w)
        self.lex_chosen = torch.tensor(math.inf, dtype=D, device=self.lex_w.device)

    def predict(self, batches, init, test_rows, steps=None, batch_scale=None, clip: bool = True):
        pred = super().predict(batches, init, test_rows, steps, batch_scale, clip=False)
        if bool((self.lex_w != 0).any()):
            pred = pred + self._lex_cumulative(batches, test_rows, batch_scale).to(pred.device) @ self.lex_w
        return self.clip(pred).to(init.dtype) if clip else pred

    def effect_factors(self, test_rows: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        base, slope, s = super().effect_factors(test_rows, T)
        K = self._lex_kernel(test_rows).to(base.device)
        return base + K @ self.lex_w[:3], slope + K @ self.lex_w[3:], s


# ---------------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _quiet():
    """The fits repeated without a fold of runs (cross-validation of a whole fit) log their choices only when debug
    logging is on: they are not the fit's choices (a train.log had 9 of their lines before the one that counts)."""
    level = log.level
    log.setLevel(max(level, logging.WARNING) if not log.isEnabledFor(logging.DEBUG) else level)
    try:
        yield
    finally:
        log.setLevel(level)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)


def _mean(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean trajectory [N, T] over runs (recorded values only)."""
    cnt = mask.sum(0)
    return torch.where(cnt > 0, (v * mask).sum(0) / cnt.clamp(min=1), torch.zeros_like(v[0]))


def _first_value_regression(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[2, T] (a_t, b_t) of the least-squares line phi_t = a_t + b_t phi_0 over every recorded (run, test example)
    pair of the training runs: what a test example's own first value says about its later values (e.g. a high
    first loss that falls further). a_0 = 0, b_0 = 1. With no spread of first values: b_t = 1, a_t = the mean
    change (the seen mean curve, shifted); with no pair recorded at t: a_t = 0, b_t = 1."""
    v = v.double()
    w = (mask[..., :1] & mask).to(D)                                   # [R, N, T]: pairs recorded at 0 and t
    n = w.sum((0, 1)).clamp(min=1)
    x = v[..., :1].expand_as(v)
    mx, my = (w * x).sum((0, 1)) / n, (w * v).sum((0, 1)) / n
    var = (w * (x - mx) ** 2).sum((0, 1)) / n
    cov = (w * (x - mx) * (v - my)).sum((0, 1)) / n
    b = torch.where(var > 1e-12, cov / var.clamp(min=1e-300), torch.ones_like(var))
    a = torch.where(w.sum((0, 1)) > 0, my - b * mx, torch.zeros_like(my))
    b = torch.where(w.sum((0, 1)) > 0, b, torch.ones_like(b))
    a[0], b[0] = 0.0, 1.0
    return torch.stack([a, b])


def _one_se_choice(errs: torch.Tensor) -> tuple[float, bool]:
    """(ridge strength, e_0 used) from cross-validated errors [2 (e_0 off / on), len(ALPHAS), folds]: the setting
    with the lowest total error, except that a batch term (finite ridge strength) is kept only if its gain over the
    best setting without one (W = 0) is larger than the standard error of that gain over the folds (the one-
    standard-error rule, as for anchor_lex_sim's lexical term). Why: with the minimum alone, on the default boolq
    runs, rotating which 3 of the 12 runs are held out, a batch term chosen by a hair lost 22% and 10% against the
    mean trajectory on two of the four splits (with this rule: 17% on one, ties on the others). The textbook rule
    (the simplest setting within one standard error, so also a stronger ridge when the term is kept) lost 10% on
    one split there, but cost the paper experiments' runs: the tiny model's MSE 0.0075 -> 0.0123 (the mean
    trajectory: 0.0120), rte's final-step rho 0.75 -> 0.43."""
    total = errs.sum(-1)
    e_best, a_best = divmod(int(torch.argmin(total)), total.shape[1])
    if not math.isfinite(ALPHAS[a_best]):
        return ALPHAS[a_best], bool(e_best)
    a_inf = len(ALPHAS) - 1
    e_ref = int(torch.argmin(total[:, a_inf]))
    d = errs[e_ref, a_inf] - errs[e_best, a_best]
    se = float(d.std() / math.sqrt(d.numel())) if d.numel() > 1 else 0.0
    if float(d.mean()) <= se:
        return ALPHAS[a_inf], bool(e_ref)
    return ALPHAS[a_best], bool(e_best)


def _folds(R: int, k: int) -> list[list[int]]:
    k = max(2, min(k, R))
    return [list(range(R))[i::k] for i in range(k)]


def _gram(U, q, mask) -> torch.Tensor:
    """The Gram matrix [F, F] (F = 2K (K+1)) of the batch-effect columns of the rollout least squares: a sum over
    runs, so the Gram matrix of a subset of runs is the total minus the rest."""
    mk = mask.clone().to(D)
    mk[..., 0] = 0
    Qm = torch.einsum("rzt,zc,zd->rtcd", mk, q, q)
    A = torch.einsum("rta,rtb,rtcd->acbd", U, U, Qm)
    return A.reshape(A.shape[0] * A.shape[1], -1)


def _separable(mask) -> bool:
    """True when every step t >= 1 of a run is recorded for all test examples or for none: the Gram matrix is
    then a Kronecker product (sum_rt U_rt U_rt^T) x (q^T q), whose eigendecomposition is that of two small
    matrices."""
    m = mask[..., 1:]
    return bool((m == m[:, :1]).all())


class _Spectrum:
    """The eigendecomposition of the rollout least squares' Gram matrix: lam [F] and the rotations into and out
    of its eigenbasis. Kronecker-structured (see _separable) when gram is None, else of the given matrix."""

    def __init__(self, U, q, mask, gram=None):
        if gram is None:
            self.shape = (U.shape[-1], q.shape[-1])
            s = mask[:, 0, :].to(D).clone()                            # [R, T]: step recorded (for all examples)
            s[:, 0] = 0
            lg, self.Vg = torch.linalg.eigh(torch.einsum("rt,rta,rtb->ab", s, U, U))
            lq, self.Vq = torch.linalg.eigh(q.T @ q)
            self.lam, self.V = (lg[:, None] * lq[None, :]).reshape(-1), None
        else:
            self.lam, self.V = torch.linalg.eigh(gram)

    def rotate(self, x):
        """V^T x for x [F] or [F, k]."""
        if self.V is not None:
            return self.V.T @ x
        X = x.reshape(*self.shape, -1)
        return torch.einsum("ba,bdk,dc->ack", self.Vg, X, self.Vq).reshape(x.shape)

    def unrotate(self, y):
        """V y for y [F] or [F, k]."""
        if self.V is not None:
            return self.V @ y
        Y = y.reshape(*self.shape, -1)
        return torch.einsum("ab,bdk,cd->ack", self.Vg, Y, self.Vq).reshape(y.shape)


def _normal_equations(U, q, v, mask, m, e0_on: bool, gram: bool = True) -> dict:
    """Sufficient statistics of the rollout least squares over runs (targets v - m at recorded t >= 1);
    gram=False leaves out the Gram matrix (the caller has its eigendecomposition)."""
    mk = mask.clone().to(D)
    mk[..., 0] = 0
    y = (v - m[None]) * mk                                            # [R, N, T]
    e0 = (v[..., 0] - m[None, :, 0]) * mask[..., 0]                   # [R, N]
    # contractions over test examples first: [R, T, K+1] intermediates, never [R, N, T, 2K, K+1]
    stats = {"b": torch.einsum("rta,rtc->ac", U, torch.einsum("rzt,zc->rtc", y, q)).reshape(-1)}
    if gram:
        stats["A"] = _gram(U, q, mask)
    F = stats["b"].shape[0]
    if e0_on:
        Yk = torch.einsum("rzt,zc->rtc", mk * e0[..., None], q)                          # [R, T, K+1]
        stats["Ak"] = torch.einsum("rta,rtc->act", U, Yk).reshape(F, -1)                  # [F, T]
        stats["kk"] = torch.einsum("rzt,rz->t", mk, e0 ** 2)
        stats["bk"] = torch.einsum("rzt,rz->t", y, e0)
    stats["shape"] = (U.shape[-1], q.shape[-1])
    stats["T"] = v.shape[-1]
    return stats


def _solve(stats: dict, alpha: float, e0_on: bool, eig=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(W [2K, K+1], kappa [T]) of ridge strength alpha (inf: W = 0) on the given statistics. kappa[0] = 1 (the
    prediction starts at the true first value); kappa[t >= 1] = 0 without e_0. eig: the eigendecomposition
    (eigenvalues, eigenvectors) of the Gram matrix, when stats holds none; the ridge solutions are then read off
    it (the same solutions as a direct solve, up to rounding)."""
    a_dim, c_dim = stats["shape"]
    b, T = stats["b"], stats["T"]
    if eig is None:
        eig = _Spectrum(None, None, None, stats["A"])
    lam = eig.lam
    F = lam.shape[0]
    ridge = (float(lam.sum()) / F + 1e-12) * (alpha if math.isfinite(alpha) else 0.0)
    inv = 1.0 / (lam + ridge).clamp(min=1e-300)

    def a_inv(x):  # (A + ridge I)^-1 x
        return eig.unrotate((inv[:, None] if x.dim() == 2 else inv) * eig.rotate(x))
    if not e0_on:
        kap = torch.zeros(T, dtype=D)
        kap[0] = 1.0
        if not math.isfinite(alpha):
            return torch.zeros(a_dim, c_dim, dtype=D), kap
        return a_inv(b).reshape(a_dim, c_dim), kap
    kk, Ak, bk = stats["kk"], stats["Ak"], stats["bk"]
    steady = kk > 0
    if not math.isfinite(alpha):
        kap = torch.where(steady, bk / kk.clamp(min=1e-300), torch.zeros_like(kk))
        kap[0] = 1.0
        return torch.zeros(a_dim, c_dim, dtype=D), kap
    # the block system [[A + ridge I, Ak], [Ak^T, diag(kk)]] [w; kappa] = [b; bk], by its Schur complement
    schur = torch.diag(kk + (~steady).to(D)) - Ak.T @ a_inv(Ak)
    kap = torch.linalg.solve(schur, bk - Ak.T @ a_inv(b))
    w = a_inv(b - Ak @ kap)
    kap = kap.clone()
    kap[0] = 1.0
    return w.reshape(a_dim, c_dim), kap


def _sq_error(U, q, v, mask, m, W, kap) -> float:
    """Sum of squared rollout errors at recorded steps t >= 1 of held-out runs."""
    pred = m[None] + (v[..., :1] - m[None, :, :1]) * kap[None, None] + torch.einsum("rta,ac,zc->rzt", U, W, q)
    mk = mask.clone()
    mk[..., 0] = False
    return float(((pred - v) ** 2)[mk].sum())


def _clip(pred: torch.Tensor, metric: str) -> torch.Tensor:
    from ..metrics import metric_range
    rng = metric_range(metric)
    if rng is None:
        return pred
    return pred.clamp(min=rng[0], max=None if math.isinf(rng[1]) else rng[1])
