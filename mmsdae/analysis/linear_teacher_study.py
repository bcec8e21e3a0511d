"""RC-MAE's linear-model study of the EMA teacher (Sec. 4, App. B, App. E.1).

A linear student ``S`` (weight + bias) and its EMA teacher ``T`` reconstruct
``x`` from a masked ``x~ = x * m`` with the per-sample objectives of
Proposition 4.1 / Eq. (7)::

    L_r = 1/2 ||S x~ + b - x||^2
    L_c = 1/2 ||S x~ + b - stopgrad(T x~ + b_T)||^2

trained with SGD + momentum on ``L_r + L_c`` and the teacher update of
Eq. (2) after every step, on 10 random Gaussian clusters in R^32 (App. E.1,
Table 8). After every training iteration the "Empirical Test" of Sec. 4 is
run on an extra batch: for each point, a two-input sequence of one of the
pair types of Table 1 (see ``PAIR_TYPES``), one gradient step and teacher
update on input 1 (on a copy of the state), then ``grad_S L_c`` and
``grad_S L_r`` on input 2. Their norms and cosine are the three panels of
Fig. 2 (top row).

Everything is float64 with explicit ``torch.Generator`` streams (same
numbers every run). The gradients are the closed forms of Eq. (7c),
``(S x~ + b - y) x~^T`` (tested against autograd and ``torch.optim.SGD``);
as each is an outer product ``r x~^T``, ``||r x~^T||_F = ||r|| ||x~||`` and
the cosine is ``cos(r_r, r_c)``.

Our readings where the paper is silent or inconsistent (all settable; the
E.1 numbers, Table 1's pair types and the teacher-lag reading of the
"different" cosine are in the README's linear-model section): the probe
step is plain SGD at the training lr (App. B, Eq. (9f); or
``probe_optimizer='momentum'``), gradients are w.r.t. ``S``
(``include_bias_in_grad`` appends the bias's), ``S`` and ``b`` start as
``nn.Linear``'s default and the teacher as a copy.
"""
import math
import time
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import torch

__all__ = [
    'PAIR_TYPES', 'PROBE_OPTIMIZERS', 'QUANTITIES', 'LinearStudyConfig',
    'ClusterData', 'LinearTeacherState', 'make_gaussian_clusters',
    'sample_wishart', 'random_mask', 'init_state', 'reconstruction_grad',
    'consistency_grad', 'train_step', 'ema_update', 'make_pairs',
    'probe_pairs', 'run_study', 'summarize', 'format_table',
    'results_to_jsonable', 'plot_results'
]

DTYPE = torch.float64

#: Table 1's pair types (our reading: the table body is missing from the
#: text). Input 1 is a data point ``x`` with a random mask ``m``.
PAIR_TYPES: Dict[str, str] = {
    'same': 'input 2 = input 1 (the identical masked vector; '
            'cos(x^, x~) = 1, Case 1 of Prop. 4.1)',
    'similar': 'input 2 = the same point x with a fresh independent mask '
               '(cos(x^, x~) in (0, 1), Case 3)',
    'different': 'input 2 = a random point of another cluster with its own '
                 'mask (cos(x^, x~) ~ 0 in expectation, Case 2; not exactly '
                 'orthogonal since the means are U(-3, 3))',
}

#: ``'sgd'``: plain gradient step at input 1 (default, App. B's step);
#: ``'momentum'``: a torch SGD+momentum step from a copy of the buffer.
PROBE_OPTIMIZERS = ('sgd', 'momentum')

#: Per-point probe measurements (Fig. 2 top row: a, b, c) plus the cosine
#: between the two masked inputs.
QUANTITIES: Dict[str, str] = {
    'norm_c': '||grad_S L_c||_F',
    'norm_r': '||grad_S L_r||_F',
    'cos_rc': 'cos(grad_S L_r, grad_S L_c)',
    'cos_inputs': 'cos(x^, x~)',
}


@dataclass
class LinearStudyConfig:
    """Settings of the linear-model study; defaults follow App. E.1 / Table 8.
    ``probe_batch_size`` / ``probe_lr`` default to ``batch_size`` / ``lr``;
    ``probe_lr=0`` measures the teacher's lag alone."""
    runs: int = 5
    iters: int = 500
    batch_size: int = 32
    lr: float = 1e-3
    sgd_momentum: float = 0.97
    teacher_momentum: float = 0.9
    mask_ratio: float = 0.5
    num_clusters: int = 10
    dim: int = 32
    df: int = 54
    points_per_cluster: int = 200
    mean_range: Tuple[float, float] = (-3.0, 3.0)
    cov_diag_range: Tuple[float, float] = (0.25, 0.35)
    probe_batch_size: Optional[int] = None
    probe_optimizer: str = 'sgd'
    probe_lr: Optional[float] = None
    include_bias_in_grad: bool = False
    pair_types: Tuple[str, ...] = tuple(PAIR_TYPES)
    seed: int = 0

    def __post_init__(self):
        self.mean_range = tuple(float(v) for v in self.mean_range)
        self.cov_diag_range = tuple(float(v) for v in self.cov_diag_range)
        self.pair_types = tuple(self.pair_types)
        self.validate()

    @property
    def num_masked(self) -> int:
        """Components zeroed per sample: ``round(mask_ratio * dim)``."""
        return int(round(self.mask_ratio * self.dim))

    @property
    def probe_size(self) -> int:
        return self.probe_batch_size or self.batch_size

    @property
    def probe_step_lr(self) -> float:
        return self.lr if self.probe_lr is None else self.probe_lr

    def validate(self):
        """Raise ``ValueError`` naming the bad setting and how to fix it."""
        for name in ('runs', 'iters', 'batch_size', 'dim',
                     'points_per_cluster'):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(
                    f'{name} must be a positive integer, got {value!r}')
        if self.probe_batch_size is not None and (
                not isinstance(self.probe_batch_size, (int, np.integer))
                or self.probe_batch_size < 1):
            raise ValueError('probe_batch_size must be a positive integer '
                             f'or None, got {self.probe_batch_size!r}')
        if not isinstance(self.num_clusters,
                          (int, np.integer)) or self.num_clusters < 2:
            raise ValueError('num_clusters must be an integer >= 2, got '
                             f'{self.num_clusters!r}; App. E.1 uses 10')
        if not isinstance(self.df, (int, np.integer)) or self.df < self.dim:
            raise ValueError(
                f'df must be an integer >= dim ({self.dim}) for positive '
                f'definite covariances, got {self.df!r}; App. E.1 states 54')
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f'mask_ratio must be in (0, 1), got '
                             f'{self.mask_ratio!r}; Table 8 uses 0.5')
        if not 1 <= self.num_masked <= self.dim - 1:
            raise ValueError(
                f'mask_ratio={self.mask_ratio} masks {self.num_masked} of '
                f'dim={self.dim}; it must mask at least one and keep one')
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f'lr must be > 0, got {self.lr!r}; Table 8 '
                             'uses 0.001')
        if self.probe_lr is not None and not (isinstance(
                self.probe_lr, (int, float)) and self.probe_lr >= 0):
            raise ValueError(f'probe_lr must be >= 0 or None (= lr), got '
                             f'{self.probe_lr!r}')
        if not 0.0 <= self.sgd_momentum < 1.0:
            raise ValueError('sgd_momentum must be in [0, 1), got '
                             f'{self.sgd_momentum!r}; Table 8 uses 0.97')
        if not 0.0 < self.teacher_momentum < 1.0:
            raise ValueError('teacher_momentum must be in (0, 1), got '
                             f'{self.teacher_momentum!r}; Table 8 uses 0.9')
        lo, hi = self.mean_range
        if not lo < hi:
            raise ValueError(f'mean_range must be (low, high) with low < '
                             f'high, got {self.mean_range!r}')
        lo, hi = self.cov_diag_range
        if not 0.0 < lo <= hi:
            raise ValueError('cov_diag_range must be (low, high) with '
                             f'0 < low <= high, got {self.cov_diag_range!r}')
        size = self.num_clusters * self.points_per_cluster
        if max(self.batch_size, self.probe_size) > size:
            raise ValueError(
                f'batch_size ({self.batch_size}) / probe_batch_size '
                f'({self.probe_size}) exceed the dataset size ({size}): '
                'lower them or add points')
        if self.probe_optimizer not in PROBE_OPTIMIZERS:
            raise ValueError(f'probe_optimizer must be one of '
                             f'{PROBE_OPTIMIZERS}, got '
                             f'{self.probe_optimizer!r}')
        unknown = [p for p in self.pair_types if p not in PAIR_TYPES]
        if (unknown or not self.pair_types
                or len(set(self.pair_types)) != len(self.pair_types)):
            raise ValueError(
                f'pair_types must be distinct names from {tuple(PAIR_TYPES)},'
                f' got {self.pair_types!r}')


# ----------------------------------------------------------------- data ---
@dataclass
class ClusterData:
    """The App. E.1 dataset; points are stored cluster by cluster."""
    x: torch.Tensor  # (K * P, d)
    labels: torch.Tensor  # (K * P,)
    means: torch.Tensor  # (K, d), mu_i ~ U(mean_range)^d
    covs: torch.Tensor  # (K, d, d), Sigma_i ~ Wishart(V_i, df)
    scale_diags: torch.Tensor  # (K, d), diag(V_i) ~ U(cov_diag_range)
    points_per_cluster: int


def sample_wishart(scale_diags: torch.Tensor, df: int,
                   generator: torch.Generator) -> torch.Tensor:
    """Wishart(V, df) samples for diagonal scales ``V = diag(scale_diags)``.

    Sampled by the definition, ``W = sum_{k=1}^{df} z_k z_k^T`` with
    ``z_k ~ N(0, V)`` i.i.d. (integer ``df``; ``E[W] = df V``), which keeps
    the draw on ``generator`` (``torch.distributions.Wishart`` uses the
    global RNG). ``scale_diags``: (K, d) -> (K, d, d).
    """
    k, d = scale_diags.shape
    z = torch.randn(k, int(df), d, generator=generator, dtype=DTYPE)
    z = z * scale_diags.to(DTYPE).sqrt()[:, None, :]
    return z.transpose(1, 2) @ z


def make_gaussian_clusters(num_clusters: int = 10,
                           dim: int = 32,
                           points_per_cluster: int = 200,
                           df: int = 54,
                           generator: Optional[torch.Generator] = None,
                           mean_range=(-3.0, 3.0),
                           cov_diag_range=(0.25, 0.35)) -> ClusterData:
    """App. E.1: ``mu_i ~ U(-3, 3)^d``, ``Sigma_i ~ Wishart(V_i, df)``,
    ``diag(V_i) ~ U(.25, .35)``, ``points_per_cluster`` draws of
    ``N(mu_i, Sigma_i)`` per cluster (defaults: the numbers E.1 states)."""
    if df < dim:
        raise ValueError(f'df ({df}) must be >= dim ({dim}) for positive '
                         'definite Wishart covariances; App. E.1 uses 54')
    g = generator if generator is not None else torch.Generator()
    lo, hi = mean_range
    means = lo + (hi - lo) * torch.rand(
        num_clusters, dim, generator=g, dtype=DTYPE)
    lo, hi = cov_diag_range
    scale_diags = lo + (hi - lo) * torch.rand(
        num_clusters, dim, generator=g, dtype=DTYPE)
    covs = sample_wishart(scale_diags, df, g)
    chol = torch.linalg.cholesky(covs)  # (K, d, d)
    eps = torch.randn(num_clusters, points_per_cluster, dim, generator=g,
                      dtype=DTYPE)
    x = means[:, None, :] + eps @ chol.transpose(1, 2)
    labels = torch.arange(num_clusters).repeat_interleave(points_per_cluster)
    return ClusterData(
        x=x.reshape(-1, dim), labels=labels, means=means, covs=covs,
        scale_diags=scale_diags, points_per_cluster=points_per_cluster)


def random_mask(n: int, dim: int, mask_ratio: float,
                generator: torch.Generator) -> torch.Tensor:
    """Binary masks ``m`` (1 = kept) zeroing exactly ``round(ratio * dim)``
    random components of each of ``n`` samples (Sec. 4: ``x~ = x * m``)."""
    num_masked = int(round(mask_ratio * dim))
    ranks = torch.rand(n, dim, generator=generator).argsort(dim=1)
    return (ranks >= num_masked).to(DTYPE)


# ---------------------------------------------------------------- model ---
@dataclass
class LinearTeacherState:
    """Student ``(weight, bias)``, EMA teacher, SGD momentum buffers."""
    weight: torch.Tensor  # S, (d, d)
    bias: torch.Tensor  # b, (d,)
    t_weight: torch.Tensor  # T
    t_bias: torch.Tensor  # b_T
    buf_weight: torch.Tensor  # SGD momentum buffer of S
    buf_bias: torch.Tensor
    step: int = 0

    def clone(self) -> 'LinearTeacherState':
        return LinearTeacherState(
            *(getattr(self, n).clone() for n in
              ('weight', 'bias', 't_weight', 't_bias', 'buf_weight',
               'buf_bias')), step=self.step)


def init_state(dim: int, generator: torch.Generator) -> LinearTeacherState:
    """``nn.Linear``-style ``U(-1/sqrt(d), 1/sqrt(d))`` student, the teacher
    a copy of it, zero momentum buffers."""
    bound = 1.0 / math.sqrt(dim)
    weight = (2 * torch.rand(dim, dim, generator=generator, dtype=DTYPE) -
              1) * bound
    bias = (2 * torch.rand(dim, generator=generator, dtype=DTYPE) - 1) * bound
    return LinearTeacherState(weight, bias, weight.clone(), bias.clone(),
                              torch.zeros_like(weight),
                              torch.zeros_like(bias))


def reconstruction_grad(weight, bias, x_masked, x):
    """Per-sample ``grad`` of ``L_r = 1/2||S x~ + b - x||^2`` (Eq. (7c)):
    ``((S x~ + b - x) x~^T, S x~ + b - x)``, shapes ((n, d, d), (n, d))."""
    r = x_masked @ weight.T + bias - x
    return r[:, :, None] * x_masked[:, None, :], r


def consistency_grad(weight, bias, t_weight, t_bias, x_masked):
    """Per-sample ``grad`` of ``L_c = 1/2||S x~ + b - sg(T x~ + b_T)||^2``
    (Eq. (7c)): ``((S - T) x~ x~^T + (b - b_T) x~^T, ...)``."""
    r = x_masked @ (weight - t_weight).T + (bias - t_bias)
    return r[:, :, None] * x_masked[:, None, :], r


def ema_update(teacher: torch.Tensor, student: torch.Tensor,
               alpha: float) -> torch.Tensor:
    """Eq. (2): ``T <- alpha T + (1 - alpha) S`` (returns a new tensor)."""
    return alpha * teacher + (1.0 - alpha) * student


def train_step(state: LinearTeacherState, x: torch.Tensor,
               mask: torch.Tensor, cfg: LinearStudyConfig) -> Dict[str, float]:
    """One training iteration in place: the batch mean of ``L_r + L_c``,
    a ``torch.optim.SGD(momentum=mu, dampening=0)`` step (``v <- mu v + g``,
    ``S <- S - lr v``), then the teacher update of Eq. (2).

    Returns the batch losses before the step.
    """
    xt = x * mask
    r_r = xt @ state.weight.T + state.bias - x
    r_c = xt @ (state.weight - state.t_weight).T + (state.bias - state.t_bias)
    total = r_r + r_c
    n = x.shape[0]
    g_w = total.T @ xt / n
    g_b = total.mean(0)
    mu = cfg.sgd_momentum
    state.buf_weight = mu * state.buf_weight + g_w
    state.buf_bias = mu * state.buf_bias + g_b
    state.weight = state.weight - cfg.lr * state.buf_weight
    state.bias = state.bias - cfg.lr * state.buf_bias
    alpha = cfg.teacher_momentum
    state.t_weight = ema_update(state.t_weight, state.weight, alpha)
    state.t_bias = ema_update(state.t_bias, state.bias, alpha)
    state.step += 1
    return dict(loss_r=0.5 * r_r.pow(2).sum(1).mean().item(),
                loss_c=0.5 * r_c.pow(2).sum(1).mean().item())


# --------------------------------------------------------------- probes ---
def make_pairs(data: ClusterData, index: torch.Tensor, mask1: torch.Tensor,
               pair_type: str, mask_ratio: float,
               generator: torch.Generator):
    """Input 2 ``(x2, m2)`` for input 1 ``(data.x[index], mask1)`` and one
    of ``PAIR_TYPES`` (our reading of Table 1)."""
    x1 = data.x[index]
    if pair_type == 'same':
        return x1, mask1
    n, dim = x1.shape
    mask2 = random_mask(n, dim, mask_ratio, generator)
    if pair_type == 'similar':
        return x1, mask2
    if pair_type == 'different':
        k = int(data.labels.max()) + 1
        offset = torch.randint(1, k, (n, ), generator=generator)
        other = (data.labels[index] + offset) % k
        within = torch.randint(
            0, data.points_per_cluster, (n, ), generator=generator)
        return data.x[other * data.points_per_cluster + within], mask2
    raise ValueError(f'unknown pair type {pair_type!r}; choose from '
                     f'{tuple(PAIR_TYPES)}')


def probe_pairs(state: LinearTeacherState, x1, mask1, x2, mask2,
                cfg: LinearStudyConfig) -> Dict[str, torch.Tensor]:
    """Sec. 4 "Empirical Test" for a batch of two-input sequences.

    For each point independently (the state is not modified): one step on
    ``L_r + L_c`` at input 1 (``cfg.probe_optimizer``), the teacher update
    of Eq. (2), then ``grad_S L_r`` and ``grad_S L_c`` at input 2. Vectorised
    with the closed forms: the stepped student applied to ``x2~`` is
    ``S x2~ - lr [mu v x2~ +] r1 (x1~ . x2~)``. Returns per-point tensors
    keyed like ``QUANTITIES``.
    """
    lr, alpha = cfg.probe_step_lr, cfg.teacher_momentum
    x1t, x2t = x1 * mask1, x2 * mask2
    w, b, tw, tb = state.weight, state.bias, state.t_weight, state.t_bias
    # Total residual at input 1: grad = r1 x1~^T (weight), r1 (bias).
    r1 = (x1t @ w.T + b - x1) + (x1t @ (w - tw).T + (b - tb))
    dot12 = (x1t * x2t).sum(1, keepdim=True)
    s_x2 = x2t @ w.T - lr * r1 * dot12  # S' x2~
    b_new = b - lr * r1  # b'
    if cfg.probe_optimizer == 'momentum':
        mu = cfg.sgd_momentum
        s_x2 = s_x2 - lr * mu * (x2t @ state.buf_weight.T)
        b_new = b_new - lr * mu * state.buf_bias
    t_x2 = alpha * (x2t @ tw.T) + (1 - alpha) * s_x2  # T' x2~
    tb_new = alpha * tb + (1 - alpha) * b_new
    r_r = s_x2 + b_new - x2
    r_c = s_x2 + b_new - (t_x2 + tb_new)
    x2_sq = x2t.pow(2).sum(1)
    scale = (x2_sq + 1.0 if cfg.include_bias_in_grad else x2_sq).sqrt()
    nr, nc = r_r.norm(dim=1), r_c.norm(dim=1)
    tiny = torch.finfo(DTYPE).tiny
    cos_rc = (r_r * r_c).sum(1) / (nr * nc).clamp_min(tiny)
    cos_in = dot12[:, 0] / (x1t.norm(dim=1) * x2t.norm(dim=1)).clamp_min(tiny)
    return dict(norm_c=nc * scale, norm_r=nr * scale, cos_rc=cos_rc,
                cos_inputs=cos_in)


# ---------------------------------------------------------------- study ---
def _generator(seed: int, run: int, stream: int) -> torch.Generator:
    """Independent, reproducible stream per (seed, run, purpose)."""
    state = np.random.SeedSequence([seed, run, stream]).generate_state(2)
    return torch.Generator().manual_seed(
        int(state[0]) << 32 | int(state[1]))


def run_study(config: Optional[LinearStudyConfig] = None,
              **overrides) -> dict:
    """Run the study; returns a dict with

    * ``per_run[pair][quantity]``: array (runs, iters), batch means per
      iteration (iteration t = probe after training step t);
    * ``mean[pair][quantity]`` / ``std[pair][quantity]``: over runs, (iters,);
    * ``train_loss_r`` / ``train_loss_c``: (runs, iters) training losses;
    * ``config`` (dict), ``iterations`` (1..iters), ``wall_time_s``.

    Each run draws its own dataset, initialisation, batches (stream 0) and
    probe inputs (stream 1, so the probes never change the training path).
    """
    cfg = config or LinearStudyConfig()
    if overrides:
        cfg = LinearStudyConfig(**{**asdict(cfg), **overrides})
    # 32 x 32 ops gain nothing from intra-op threads, and spinning threads
    # slow the loop down badly on a busy machine: run single-threaded.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_study(cfg)
    finally:
        torch.set_num_threads(threads)


def _run_study(cfg: LinearStudyConfig) -> dict:
    start = time.perf_counter()
    quantities = list(QUANTITIES)
    per_run = {
        p: {q: np.zeros((cfg.runs, cfg.iters)) for q in quantities}
        for p in cfg.pair_types
    }
    loss_r = np.zeros((cfg.runs, cfg.iters))
    loss_c = np.zeros((cfg.runs, cfg.iters))
    n_data = cfg.num_clusters * cfg.points_per_cluster
    for run in range(cfg.runs):
        g_train = _generator(cfg.seed, run, 0)
        g_probe = _generator(cfg.seed, run, 1)
        data = make_gaussian_clusters(cfg.num_clusters, cfg.dim,
                                      cfg.points_per_cluster, cfg.df,
                                      g_train, cfg.mean_range,
                                      cfg.cov_diag_range)
        state = init_state(cfg.dim, g_train)
        for it in range(cfg.iters):
            idx = torch.randperm(n_data, generator=g_train)[:cfg.batch_size]
            mask = random_mask(cfg.batch_size, cfg.dim, cfg.mask_ratio,
                               g_train)
            losses = train_step(state, data.x[idx], mask, cfg)
            loss_r[run, it] = losses['loss_r']
            loss_c[run, it] = losses['loss_c']
            pidx = torch.randperm(n_data, generator=g_probe)[:cfg.probe_size]
            mask1 = random_mask(cfg.probe_size, cfg.dim, cfg.mask_ratio,
                                g_probe)
            x1 = data.x[pidx]
            for pair in cfg.pair_types:
                x2, mask2 = make_pairs(data, pidx, mask1, pair,
                                       cfg.mask_ratio, g_probe)
                out = probe_pairs(state, x1, mask1, x2, mask2, cfg)
                for q in quantities:
                    per_run[pair][q][run, it] = out[q].mean().item()
    mean = {
        p: {q: v.mean(0) for q, v in d.items()}
        for p, d in per_run.items()
    }
    std = {
        p: {q: v.std(0, ddof=0) for q, v in d.items()}
        for p, d in per_run.items()
    }
    return dict(
        config=asdict(cfg), pair_types=list(cfg.pair_types),
        quantities=dict(QUANTITIES), iterations=np.arange(1, cfg.iters + 1),
        per_run=per_run, mean=mean, std=std, train_loss_r=loss_r,
        train_loss_c=loss_c, wall_time_s=time.perf_counter() - start)


def summarize(results: dict, last_n: int = 100) -> Dict[str, dict]:
    """Per pair type and quantity: the mean over runs and over the last
    ``last_n`` iterations (``last``) and over all iterations (``all``), with
    the std over runs of the per-run averages."""
    iters = len(results['iterations'])
    last_n = max(1, min(int(last_n), iters))
    summary = {}
    for pair in results['pair_types']:
        summary[pair] = {}
        for q, arr in results['per_run'][pair].items():
            last, full = arr[:, -last_n:].mean(1), arr.mean(1)
            summary[pair][q] = dict(
                last=float(last.mean()), last_std=float(last.std()),
                all=float(full.mean()), all_std=float(full.std()))
    return dict(last_n=last_n, rows=summary)


def format_table(results: dict, last_n: int = 100) -> str:
    """Rows: pair types; columns: each quantity's mean over the last
    ``last_n`` iterations and over all iterations (mean over runs)."""
    summary = summarize(results, last_n)
    cols = list(QUANTITIES)
    heads = [QUANTITIES[q] for q in cols]
    width = max(len(h) for h in heads) + 2
    lines = [
        f"{'pair':<10}" + ''.join(f'{h:>{width}}' for h in heads),
    ]
    for key, label in (('last', f'last {summary["last_n"]} iters'),
                       ('all', 'all iters')):
        lines.append(f'-- mean over {label} (and runs) --')
        for pair, row in summary['rows'].items():
            lines.append(f'{pair:<10}' + ''.join(
                f'{row[q][key]:>{width}.4f}' for q in cols))
    return '\n'.join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def results_to_jsonable(results: dict, last_n: int = 100,
                        curves: bool = True) -> dict:
    """A JSON-ready dict: config, summary table and (with ``curves``) the
    mean/std curves over runs."""
    out = dict(
        config=results['config'], pair_types=results['pair_types'],
        quantities=results['quantities'],
        pair_type_descriptions={p: PAIR_TYPES[p]
                                for p in results['pair_types']},
        summary=summarize(results, last_n),
        wall_time_s=results['wall_time_s'])
    if curves:
        out.update(iterations=results['iterations'], mean=results['mean'],
                   std=results['std'],
                   train_loss_r=results['train_loss_r'].mean(0),
                   train_loss_c=results['train_loss_c'].mean(0))
    return _jsonable(out)


def plot_results(results: dict, path: str) -> str:
    """Fig. 2 top row: (a) ``||grad L_c||_F``, (b) ``||grad L_r||_F``,
    (c) ``cos(grad L_r, grad L_c)`` against the iteration, one line per pair
    type (mean over runs) with the std over runs shaded."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    its = results['iterations']
    panels = [('norm_c', '(a) ' + QUANTITIES['norm_c']),
              ('norm_r', '(b) ' + QUANTITIES['norm_r']),
              ('cos_rc', '(c) ' + QUANTITIES['cos_rc'])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (q, title) in zip(axes, panels):
        for pair in results['pair_types']:
            m, s = results['mean'][pair][q], results['std'][pair][q]
            ax.plot(its, m, label=pair, lw=1.2)
            ax.fill_between(its, m - s, m + s, alpha=0.25)
        ax.set_title(title)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
    axes[2].axhline(0.0, color='k', lw=0.6)
    axes[0].legend()
    cfg = results['config']
    fig.suptitle(
        f"RC-MAE linear model (Sec. 4, Fig. 2 top row): {cfg['runs']} runs, "
        f"probe step: {cfg['probe_optimizer']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
