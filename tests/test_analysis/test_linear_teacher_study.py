"""RC-MAE's linear-model study (Sec. 4, App. B, App. E.1, Fig. 2 top row)."""
import copy
import dataclasses
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmsdae.analysis import linear_teacher_study as lts
from mmsdae.analysis.linear_teacher_study import LinearStudyConfig
from tool_loader import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis_tools', 'rcmae_linear_model.py')
F64 = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def trained_state(cfg, steps=30, seed=0):
    """A state some SGD steps into training, so that S != T and the
    momentum buffers are non-zero."""
    g = gen(seed)
    data = lts.make_gaussian_clusters(cfg.num_clusters, cfg.dim,
                                      cfg.points_per_cluster, cfg.df, g)
    state = lts.init_state(cfg.dim, g)
    for _ in range(steps):
        idx = torch.randperm(len(data.x), generator=g)[:cfg.batch_size]
        lts.train_step(state, data.x[idx],
                       lts.random_mask(cfg.batch_size, cfg.dim,
                                       cfg.mask_ratio, g), cfg)
    return data, state


# ------------------------------------------------------------- dataset ---
def test_dataset_shapes_and_ranges():
    data = lts.make_gaussian_clusters(generator=gen())
    assert data.x.shape == (10 * 200, 32) and data.x.dtype == F64
    assert torch.equal(torch.bincount(data.labels), torch.full((10, ), 200))
    assert data.means.shape == (10, 32)
    assert data.means.min() >= -3 and data.means.max() <= 3
    assert data.scale_diags.min() >= 0.25 and data.scale_diags.max() <= 0.35
    assert data.covs.shape == (10, 32, 32)
    assert torch.allclose(data.covs, data.covs.transpose(1, 2))
    assert torch.linalg.eigvalsh(data.covs).min() > 0
    # points are stored cluster by cluster, around their cluster's mean
    for k in range(10):
        pts = data.x[data.labels == k]
        dist = (pts.mean(0)[None] - data.means).norm(dim=1)
        assert dist.argmin() == k


def test_dataset_settings_and_paper_defaults():
    cfg = LinearStudyConfig()
    # App. E.1's stated numbers (its own arithmetic disagrees: 48 / 1000)
    assert (cfg.df, cfg.points_per_cluster, cfg.num_clusters, cfg.dim) == (
        54, 200, 10, 32)
    assert (cfg.runs, cfg.iters, cfg.batch_size, cfg.lr, cfg.sgd_momentum,
            cfg.teacher_momentum, cfg.mask_ratio) == (5, 500, 32, 1e-3, 0.97,
                                                      0.9, 0.5)
    data = lts.make_gaussian_clusters(
        num_clusters=3, dim=6, points_per_cluster=7, df=9, generator=gen())
    assert data.x.shape == (21, 6) and data.covs.shape == (3, 6, 6)
    with pytest.raises(ValueError, match='df'):
        lts.make_gaussian_clusters(dim=32, df=31, generator=gen())


def test_cluster_samples_follow_their_covariance():
    data = lts.make_gaussian_clusters(
        num_clusters=2, dim=4, points_per_cluster=20000, df=6,
        generator=gen(1))
    for k in range(2):
        pts = data.x[data.labels == k]
        assert torch.allclose(pts.mean(0), data.means[k], atol=0.1)
        emp = torch.cov(pts.T)
        scale = data.covs[k].diagonal().max()
        assert (emp - data.covs[k]).abs().max() < 0.05 * scale


def test_wishart_mean_is_df_times_v():
    n, d, df = 2000, 8, 12
    v = torch.linspace(0.25, 0.35, d, dtype=F64)
    w = lts.sample_wishart(v[None].expand(n, d), df, gen(2))
    assert w.shape == (n, d, d)
    mean = w.mean(0)
    expected = df * torch.diag(v)
    # diag: var(W_ii) = 2 df V_ii^2 -> std of the mean ~1.5% of df V_ii
    assert torch.allclose(mean.diagonal(), expected.diagonal(), rtol=0.06)
    # off-diagonal: var = df V_ii V_jj -> std of the mean ~0.02
    off = mean - torch.diag(mean.diagonal())
    assert off.abs().max() < 0.15
    # variance of the diagonal: 2 df V_ii^2
    assert torch.allclose(w.diagonal(dim1=1, dim2=2).var(0), 2 * df * v**2,
                          rtol=0.2)


# ---------------------------------------------------------------- mask ---
@pytest.mark.parametrize('ratio,dim', [(0.5, 32), (0.75, 32), (0.3, 10),
                                       (0.5, 7)])
def test_mask_keeps_exactly_the_ratio(ratio, dim):
    m = lts.random_mask(500, dim, ratio, gen(3))
    assert m.shape == (500, dim)
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert torch.all((m == 0).sum(1) == round(ratio * dim))
    # random positions: every component is masked sometimes, not always
    frac = (m == 0).double().mean(0)
    assert frac.min() > 0 and frac.max() < 1


# ----------------------------------------------------------- gradients ---
def test_closed_form_gradients_equal_autograd():
    g = gen(4)
    d, n = 6, 5
    w, b, tw, tb = (torch.randn(*s, generator=g, dtype=F64)
                    for s in ((d, d), (d, ), (d, d), (d, )))
    x = torch.randn(n, d, generator=g, dtype=F64)
    xt = x * lts.random_mask(n, d, 0.5, g)
    gw_r, gb_r = lts.reconstruction_grad(w, b, xt, x)
    gw_c, gb_c = lts.consistency_grad(w, b, tw, tb, xt)
    for i in range(n):
        wp, bp = w.clone().requires_grad_(), b.clone().requires_grad_()
        loss_r = 0.5 * (wp @ xt[i] + bp - x[i]).pow(2).sum()
        assert torch.allclose(
            torch.cat([t.flatten() for t in torch.autograd.grad(
                loss_r, (wp, bp))]),
            torch.cat([gw_r[i].flatten(), gb_r[i]]))
        target = (tw @ xt[i] + tb).detach()  # StopGrad(T x~ + b_T)
        loss_c = 0.5 * (wp @ xt[i] + bp - target).pow(2).sum()
        assert torch.allclose(
            torch.cat([t.flatten() for t in torch.autograd.grad(
                loss_c, (wp, bp))]),
            torch.cat([gw_c[i].flatten(), gb_c[i]]))


def test_train_step_equals_torch_sgd_and_ema():
    cfg = LinearStudyConfig(dim=5, df=5, batch_size=4, lr=0.01,
                            points_per_cluster=3, num_clusters=2)
    g = gen(5)
    state = lts.init_state(5, g)
    student = torch.nn.Linear(5, 5).double()
    with torch.no_grad():
        student.weight.copy_(state.weight)
        student.bias.copy_(state.bias)
    teacher = copy.deepcopy(student).requires_grad_(False)
    opt = torch.optim.SGD(student.parameters(), lr=cfg.lr,
                          momentum=cfg.sgd_momentum)
    a = cfg.teacher_momentum
    for _ in range(6):
        x = torch.randn(4, 5, generator=g, dtype=F64)
        m = lts.random_mask(4, 5, cfg.mask_ratio, g)
        lts.train_step(state, x, m, cfg)
        xt = x * m
        pred = student(xt)
        loss = (0.5 * (pred - x).pow(2).sum(1) +
                0.5 * (pred - teacher(xt)).pow(2).sum(1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pt, ps in zip(teacher.parameters(), student.parameters()):
                pt.mul_(a).add_((1 - a) * ps)
    assert torch.allclose(state.weight, student.weight)
    assert torch.allclose(state.bias, student.bias)
    assert torch.allclose(state.t_weight, teacher.weight)
    assert torch.allclose(state.t_bias, teacher.bias)
    assert torch.allclose(state.buf_weight,
                          opt.state[student.weight]['momentum_buffer'])


def test_ema_matches_eq2_closed_form():
    """Eq. (2): T^(k) = a^k T^(0) + sum_{i<k} a^i (1 - a) S^(k-i)."""
    g, a, k = gen(6), 0.9, 25
    students = [torch.randn(4, 4, generator=g, dtype=F64)
                for _ in range(k + 1)]
    teacher = students[0].clone()  # T^(0) = S^(0)
    for s in students[1:]:
        teacher = lts.ema_update(teacher, s, a)
    closed = a**k * students[0] + sum(
        a**i * (1 - a) * students[k - i] for i in range(k))
    assert torch.allclose(teacher, closed)
    # Eq. (2)'s sum down to S^(0) drops only a^(k+1) S^(0) (Assumption B.2)
    eq2 = sum(a**i * (1 - a) * students[k - i] for i in range(k + 1))
    assert torch.allclose(teacher - eq2, a**(k + 1) * students[0])


# -------------------------------------------------------------- probes ---
def autograd_probe(state, x1, m1, x2, m2, cfg):
    """The probe of Sec. 4 done naively, one point at a time."""
    d = cfg.dim
    out = {q: [] for q in lts.QUANTITIES}
    for i in range(len(x1)):
        student = torch.nn.Linear(d, d).double()
        teacher = torch.nn.Linear(d, d).double().requires_grad_(False)
        with torch.no_grad():
            student.weight.copy_(state.weight)
            student.bias.copy_(state.bias)
            teacher.weight.copy_(state.t_weight)
            teacher.bias.copy_(state.t_bias)
        momentum = cfg.sgd_momentum if cfg.probe_optimizer == 'momentum' else 0
        opt = torch.optim.SGD(student.parameters(), lr=cfg.probe_step_lr,
                              momentum=momentum)
        if momentum:
            opt.state[student.weight]['momentum_buffer'] = \
                state.buf_weight.clone()
            opt.state[student.bias]['momentum_buffer'] = \
                state.buf_bias.clone()
        xt1, xt2 = x1[i] * m1[i], x2[i] * m2[i]
        pred = student(xt1)
        loss = 0.5 * ((pred - x1[i]).pow(2).sum() +
                      (pred - teacher(xt1)).pow(2).sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
        a = cfg.teacher_momentum
        with torch.no_grad():
            for pt, ps in zip(teacher.parameters(), student.parameters()):
                pt.mul_(a).add_((1 - a) * ps)
        params = [student.weight] + (
            [student.bias] if cfg.include_bias_in_grad else [])
        pred = student(xt2)
        l_r = 0.5 * (pred - x2[i]).pow(2).sum()
        l_c = 0.5 * (pred - teacher(xt2)).pow(2).sum()
        g_r = torch.cat([t.flatten()
                         for t in torch.autograd.grad(
                             l_r, params, retain_graph=True)])
        g_c = torch.cat([t.flatten()
                         for t in torch.autograd.grad(l_c, params)])
        out['norm_c'].append(g_c.norm())
        out['norm_r'].append(g_r.norm())
        out['cos_rc'].append(torch.nn.functional.cosine_similarity(
            g_r, g_c, dim=0))
        out['cos_inputs'].append(torch.nn.functional.cosine_similarity(
            xt1, xt2, dim=0))
    return {q: torch.stack(v) for q, v in out.items()}


@pytest.mark.parametrize('probe_optimizer', lts.PROBE_OPTIMIZERS)
@pytest.mark.parametrize('include_bias', [False, True])
def test_vectorised_probe_equals_autograd(probe_optimizer, include_bias):
    cfg = LinearStudyConfig(
        dim=8, df=10, num_clusters=3, points_per_cluster=20, batch_size=6,
        lr=0.01, probe_optimizer=probe_optimizer,
        include_bias_in_grad=include_bias)
    data, state = trained_state(cfg, steps=10)
    g = gen(7)
    idx = torch.randperm(len(data.x), generator=g)[:6]
    m1 = lts.random_mask(6, cfg.dim, cfg.mask_ratio, g)
    for pair in lts.PAIR_TYPES:
        x2, m2 = lts.make_pairs(data, idx, m1, pair, cfg.mask_ratio, g)
        fast = lts.probe_pairs(state, data.x[idx], m1, x2, m2, cfg)
        slow = autograd_probe(state, data.x[idx], m1, x2, m2, cfg)
        for q in lts.QUANTITIES:
            assert torch.allclose(fast[q], slow[q], rtol=1e-9,
                                  atol=1e-12), (pair, q)


def test_pair_types():
    cfg = LinearStudyConfig()
    data = lts.make_gaussian_clusters(generator=gen(8))
    g = gen(9)
    idx = torch.randperm(len(data.x), generator=g)[:256]
    m1 = lts.random_mask(256, 32, 0.5, g)
    x2, m2 = lts.make_pairs(data, idx, m1, 'same', 0.5, g)
    assert torch.equal(x2, data.x[idx]) and torch.equal(m2, m1)
    x2, m2 = lts.make_pairs(data, idx, m1, 'similar', 0.5, g)
    assert torch.equal(x2, data.x[idx]) and not torch.equal(m2, m1)
    assert torch.all((m2 == 0).sum(1) == cfg.num_masked)
    x2, m2 = lts.make_pairs(data, idx, m1, 'different', 0.5, g)
    rows = (x2[:, None] == data.x[None]).all(-1).double().argmax(1)
    assert torch.all(data.labels[rows] != data.labels[idx])
    with pytest.raises(ValueError, match='pair type'):
        lts.make_pairs(data, idx, m1, 'opposite', 0.5, g)


def test_probes_do_not_modify_training_state():
    cfg = LinearStudyConfig(probe_optimizer='momentum')
    data, state = trained_state(cfg, steps=5)
    before = state.clone()
    g = gen(10)
    idx = torch.randperm(len(data.x), generator=g)[:32]
    m1 = lts.random_mask(32, 32, 0.5, g)
    for pair in lts.PAIR_TYPES:
        x2, m2 = lts.make_pairs(data, idx, m1, pair, 0.5, g)
        lts.probe_pairs(state, data.x[idx], m1, x2, m2, cfg)
    for name in ('weight', 'bias', 't_weight', 't_bias', 'buf_weight',
                 'buf_bias'):
        assert torch.equal(getattr(state, name), getattr(before, name))
    assert state.step == before.step
    # the training path is the same whatever is probed, and how
    base = lts.run_study(runs=1, iters=20)
    for kw in (dict(pair_types=('different', )),
               dict(probe_optimizer='momentum', probe_batch_size=7)):
        other = lts.run_study(runs=1, iters=20, **kw)
        assert np.array_equal(base['train_loss_r'], other['train_loss_r'])
        assert np.array_equal(base['train_loss_c'], other['train_loss_c'])


# --------------------------------------------------------------- study ---
@pytest.fixture(scope='module')
def study():
    """Table 8 settings, 2 runs x 100 iterations (the curves are flat after
    ~50 iterations, Fig. 2); the orderings hold for every seed tried."""
    return lts.run_study(runs=2, iters=100, seed=0)


def test_study_output_structure(study):
    assert study['pair_types'] == ['same', 'similar', 'different']
    assert list(study['iterations']) == list(range(1, 101))
    for pair in study['pair_types']:
        for q in lts.QUANTITIES:
            assert study['per_run'][pair][q].shape == (2, 100)
            assert study['mean'][pair][q].shape == (100, )
            assert np.all(study['std'][pair][q] >= 0)
            assert np.all(np.isfinite(study['per_run'][pair][q]))
    again = lts.run_study(runs=2, iters=100, seed=0)
    assert np.array_equal(again['per_run']['similar']['cos_rc'],
                          study['per_run']['similar']['cos_rc'])
    other = lts.run_study(runs=2, iters=100, seed=1)
    assert not np.array_equal(other['per_run']['similar']['cos_rc'],
                              study['per_run']['similar']['cos_rc'])


def test_expected_outcome_orderings(study):
    """Sec. 4 "Expected Outcome". After the probe step on input 1,
    ``grad L_c`` at input 2 = a [(S - T) x2~ + b - b_T] x2~^T (the teacher lag
    already there, the same for every pair type) minus
    a lr r1 (x1~ . x2~ + 1) x2~^T (the probe step, scaled by the input
    similarity). ``same``: the probe term dominates and points against
    ``grad L_r`` (cos -> -1); ``different``: x1~ . x2~ ~ 0, only the lag
    is left (smallest norm; cos = the lag's cos, measured ~0.17 at these
    settings, see ``test_different_is_the_teacher_lag``)."""
    rows = lts.summarize(study, last_n=50)['rows']
    val = {p: {q: rows[p][q]['last'] for q in lts.QUANTITIES} for p in rows}
    # cos(x^, x~): 1, ~#kept-by-both / #kept = 0.5, ~0
    assert val['same']['cos_inputs'] == pytest.approx(1.0)
    assert val['similar']['cos_inputs'] == pytest.approx(0.5, abs=0.05)
    assert abs(val['different']['cos_inputs']) < 0.05
    # (a) the consistency gradient is largest for "same", smallest for
    # "different" (measured ~92 / 62 / 46 over 20 seeds)
    assert (val['same']['norm_c'] > 1.2 * val['similar']['norm_c'] >
            1.2 * 1.1 * val['different']['norm_c'])
    # (c) most opposed for "same", closest to orthogonal for "different"
    # (measured -0.93 / -0.14 / +0.17 over 20 seeds, spread < 0.02)
    assert val['same']['cos_rc'] < -0.8
    assert (val['same']['cos_rc'] < val['similar']['cos_rc'] - 0.3 <
            val['different']['cos_rc'] - 0.3 - 0.1)
    assert abs(val['different']['cos_rc']) < 0.25
    # (b) "reconstruction loss produces a significantly larger gradient ...
    # on different inputs" (the probe step just fitted input 1 for "same")
    assert val['different']['norm_r'] > val['similar']['norm_r'] > (
        1.2 * val['same']['norm_r'])


def test_different_is_the_teacher_lag(study):
    """``probe_lr=0`` (no probe step) leaves only the pair-independent
    teacher lag; "different" (x1~ . x2~ ~ 0) matches it closely, while the
    probe step moves "same" far from it."""
    lag = lts.run_study(runs=2, iters=100, seed=0, probe_lr=0.0)
    # the training path is the same (the probes use their own RNG stream)
    assert np.array_equal(lag['train_loss_r'], study['train_loss_r'])
    full = lts.summarize(study, 50)['rows']
    rows = lts.summarize(lag, 50)['rows']
    lag_cos = [rows[p]['cos_rc']['last'] for p in rows]
    lag_norm = [rows[p]['norm_c']['last'] for p in rows]
    assert max(lag_cos) - min(lag_cos) < 0.03
    assert max(lag_norm) < 1.1 * min(lag_norm)
    assert full['different']['cos_rc']['last'] == pytest.approx(
        rows['different']['cos_rc']['last'], abs=0.05)
    assert full['different']['norm_c']['last'] == pytest.approx(
        rows['different']['norm_c']['last'], rel=0.15)
    assert full['same']['cos_rc']['last'] < rows['same']['cos_rc'][
        'last'] - 0.5


@pytest.mark.parametrize('kwargs,match', [
    (dict(mask_ratio=1.2), 'mask_ratio'),
    (dict(mask_ratio=0.0), 'mask_ratio'),
    (dict(mask_ratio=0.01), 'mask at least one'),
    (dict(df=31), 'df must be an integer >= dim'),
    (dict(df=54.5), 'df must be an integer'),
    (dict(teacher_momentum=1.0), 'teacher_momentum'),
    (dict(sgd_momentum=-0.1), 'sgd_momentum'),
    (dict(lr=0), 'lr must be > 0'),
    (dict(probe_lr=-1.0), 'probe_lr'),
    (dict(runs=0), 'runs must be a positive integer'),
    (dict(num_clusters=1), 'num_clusters'),
    (dict(batch_size=64, points_per_cluster=3), 'exceed the dataset size'),
    (dict(probe_optimizer='adam'), 'probe_optimizer'),
    (dict(pair_types=('same', 'opposite')), 'pair_types'),
    (dict(pair_types=()), 'pair_types'),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearStudyConfig(**kwargs)


# ----------------------------------------------------------------- CLI ---


def test_cli_writes_png_json_and_table(tmp_path, capsys):
    tool = load_tool(TOOL)
    out = tmp_path / 'out'
    args = ['--runs', '2', '--iters', '15', '--batch-size', '8',
            '--points-per-cluster', '20', '--num-clusters', '4', '--dim',
            '8', '--df', '12', '--last-n', '5', '--out-dir', str(out)]
    data = tool.main(args)
    printed = capsys.readouterr().out
    for word in ('same', 'similar', 'different', 'wall time'):
        assert word in printed
    png = (out / 'fig2_top_row.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n'
    saved = json.loads((out / 'results.json').read_text())
    assert saved == json.loads(json.dumps(data))
    assert saved['config']['df'] == 12 and saved['config']['runs'] == 2
    assert saved['summary']['last_n'] == 5
    assert len(saved['mean']['different']['norm_c']) == 15
    assert set(saved['summary']['rows']) == {'same', 'similar', 'different'}
    assert (out / 'table.txt').read_text().strip() in printed

    tool.main(args + ['--json', '--pair-types', 'same', 'different',
                      '--probe-optimizer', 'momentum'])
    streams = capsys.readouterr()
    parsed = json.loads(streams.out)
    assert parsed['pair_types'] == ['same', 'different']
    assert parsed['config']['probe_optimizer'] == 'momentum'
    assert 'wall time' in streams.err


def test_cli_refuses_bad_arguments(tmp_path):
    tool = load_tool(TOOL)
    with pytest.raises(SystemExit, match='mask_ratio'):
        tool.main(['--mask-ratio', '1.5', '--out-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match='df must be'):
        tool.main(['--df', '20', '--out-dir', str(tmp_path)])


def test_config_override_keeps_validation():
    with pytest.raises(ValueError, match='mask_ratio'):
        lts.run_study(LinearStudyConfig(runs=1, iters=1), mask_ratio=2.0)
    cfg = dataclasses.replace(LinearStudyConfig(), runs=1, iters=2)
    assert lts.run_study(cfg)['config']['iters'] == 2
