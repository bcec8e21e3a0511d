"""Two real processes on gloo (CPU): what data-parallel training must keep.

- ``tools/dist_train.sh`` end to end on the tiny SdAE config (per-epoch
  EMA): both ranks train, rank 0 writes the checkpoints, the teacher (and
  student) are bit-identical on both ranks after every epoch, masks differ
  across ranks and iterations, the teacher is neither trainable nor in the
  optimizer and DDP runs with ``find_unused_parameters=False``; ``--resume``
  and ``--cfg-options`` pass through; ``tools/slurm_train.sh`` (with a
  stand-in srun) and ``tools/dist_test.sh`` run 2 ranks too.
- ``torch.multiprocessing.spawn`` workers (exact checks):
  DDP gradients equal the mean of the per-rank local gradients; 2 processes
  x batch 2 equal 1 process x batch 4 (fixed masks, no drop path: loss,
  gradients and one SGD step) for SdAE and RC-MAE; an RC-MAE Runner with
  per-iteration EMA keeps ``teacher`` and ``teacher_neck`` identical across
  ranks.
"""
import copy
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TINY_MODEL, TINY_RCMAE
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS, MODELS

from mmsdae.datasets.tiny_downstream import make_tiny_downstream_data
from mmsdae.utils.dist import setup_distributed

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(REPO, 'configs', 'sdae',
                       'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py')
NUM_IMAGES, BATCH = 8, 2  # per rank: 4 images, 2 iterations an epoch

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def dist_environ(tmp_path):
    """The test's environment minus any launcher variables, plus the probe
    module on PYTHONPATH, the venv's python and a free port."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('SLURM_', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK',
                                'MASTER_'))}
    env.update(PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONPATH=str(tmp_path), OMP_NUM_THREADS='1')
    return env


# ---------------------------------------------------------------------------
# tools/dist_train.sh end to end
# ---------------------------------------------------------------------------
PROBE_MODULE = '''
import torch
from mmengine.hooks import Hook
from mmengine.dist import get_dist_info
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class DistProbeHook(Hook):
    """Records, per rank, what the test compares across ranks."""

    priority = 'LOWEST'  # after the EMA hook's after_train_epoch

    def before_train(self, runner):
        model = runner.model.module
        self.masks, self.epochs = [], {}
        original = model.backbone.random_order  # SdAE draws its mask here

        def recording(batch, device=None):
            out = original(batch, device)
            self.masks.append(out.clone())  # (B, N) order of the patches
            return out

        model.backbone.random_order = recording
        teacher = {id(p) for p in model.teacher.parameters()}
        optimized = {id(p) for group in runner.optim_wrapper.param_groups
                     for p in group['params']}
        self.info = dict(
            rank=get_dist_info()[0], world_size=get_dist_info()[1],
            wrapper=type(runner.model).__name__,
            find_unused=runner.model.find_unused_parameters,
            device_ids=runner.model.device_ids,
            start_epoch=runner.epoch,
            teacher_trainable=[n for n, p in model.teacher.named_parameters()
                               if p.requires_grad],
            teacher_in_optimizer=len(teacher & optimized),
            optimized=len(optimized))

    def after_train_epoch(self, runner):
        model = runner.model.module
        self.epochs[runner.epoch + 1] = dict(  # epoch counts from 0 here
            teacher={k: v.clone() for k, v in model.teacher.state_dict().items()},
            student={k: v.clone()
                     for k, v in model.backbone.state_dict().items()},
            teacher_updates=int(model.teacher_updates))

    def after_train(self, runner):
        torch.save(dict(self.info, masks=self.masks, epochs=self.epochs),
                   f'{runner.work_dir}/probe_rank{self.info["rank"]}.pth')
'''


def probe_config(tmp_path):
    (tmp_path / 'mmsdae_dist_probe.py').write_text(PROBE_MODULE)
    config = tmp_path / 'tiny_dist.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = {TINY_CONFIG!r}
        custom_imports = dict(imports=['mmsdae', 'mmsdae_dist_probe'],
                              allow_failed_imports=False)
        custom_hooks = [dict(type='SdAETeacherEMAHook'),
                        dict(type='DistProbeHook')]
    '''))
    return str(config)


def dist_train(config, work_dir, max_epochs, env, *extra):
    cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, '2',
           '--work-dir', str(work_dir), *extra, '--cfg-options',
           f'train_cfg.max_epochs={max_epochs}',
           f'train_dataloader.dataset.num_images={NUM_IMAGES}',
           f'train_dataloader.batch_size={BATCH}',
           'train_dataloader.num_workers=0',
           'train_dataloader.persistent_workers=False',
           'param_scheduler=[]', 'default_hooks.logger.interval=1',
           'default_hooks.checkpoint.interval=1']
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    probes = [torch.load(osp.join(work_dir, f'probe_rank{r}.pth'))
              for r in range(2)]
    return proc, probes


@pytest.fixture(scope='module')
def sdae_run(tmp_path_factory):
    """2 epochs through tools/dist_train.sh, then --resume to a 3rd."""
    tmp_path = tmp_path_factory.mktemp('dist_train')
    env = dist_environ(tmp_path)
    config = probe_config(tmp_path)
    work_dir = tmp_path / 'work'
    first = dist_train(config, work_dir, 2, env)
    env['PORT'] = str(free_port())
    resumed = dist_train(config, work_dir, 3, env, '--resume')
    return work_dir, first, resumed


def assert_same_on_both_ranks(state0, state1, what):
    assert state0.keys() == state1.keys()
    for name in state0:
        assert torch.equal(state0[name], state1[name]), f'{what}.{name}'


def test_dist_train_sh_runs_two_ranks_and_rank0_checkpoints(sdae_run):
    work_dir, (proc, probes), _ = sdae_run
    assert [p['rank'] for p in probes] == [0, 1]
    assert all(p['world_size'] == 2 for p in probes)
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log
    assert "backend='gloo'" in log
    # the config keeps the last 2 checkpoints
    for name in ('epoch_2.pth', 'epoch_3.pth', 'last_checkpoint'):
        assert (work_dir / name).is_file(), name
    assert not (work_dir / 'epoch_1.pth').exists()
    # the saved teacher is the one both ranks hold
    ckpt = torch.load(work_dir / 'epoch_3.pth', map_location='cpu',
                      weights_only=False)
    final = sdae_run[2][1][0]['epochs'][3]['teacher']
    for name, value in final.items():
        assert torch.equal(ckpt['state_dict'][f'teacher.{name}'], value)


def test_teacher_not_in_ddp_or_optimizer(sdae_run):
    for probe in sdae_run[1][1]:
        assert probe['wrapper'] == 'MMDistributedDataParallel'
        assert probe['find_unused'] is False  # and training worked
        assert probe['device_ids'] is None  # CPU DDP
        assert probe['teacher_trainable'] == []
        assert probe['teacher_in_optimizer'] == 0
        assert probe['optimized'] > 0


def test_teacher_bit_identical_on_every_rank_after_each_epoch(sdae_run):
    _, (_, first), (_, resumed) = sdae_run
    epochs = {**first[0]['epochs'], **resumed[0]['epochs']}
    assert sorted(epochs) == [1, 2, 3]
    for probes in (first, resumed):
        for epoch in probes[0]['epochs']:
            rank0, rank1 = (p['epochs'][epoch] for p in probes)
            assert_same_on_both_ranks(rank0['teacher'], rank1['teacher'],
                                      f'epoch {epoch} teacher')
            assert_same_on_both_ranks(rank0['student'], rank1['student'],
                                      f'epoch {epoch} student')
            # one update per epoch (SdAE's per-epoch EMA), resume included
            assert rank0['teacher_updates'] == rank1['teacher_updates'] \
                == epoch
    # the teacher did move: the equality above is not trivial
    qkv = 'layers.0.attn.qkv.weight'
    assert not torch.equal(epochs[1]['teacher'][qkv],
                           epochs[3]['teacher'][qkv])


def test_masks_differ_across_ranks_and_iterations(sdae_run):
    _, (_, first), (_, resumed) = sdae_run
    for probes, iters in ((first, 4), (resumed, 2)):
        masks0, masks1 = probes[0]['masks'], probes[1]['masks']
        assert len(masks0) == len(masks1) == iters
        for i in range(iters):
            assert masks0[i].shape == (BATCH, 64)
            assert not torch.equal(masks0[i], masks1[i]), i
            for j in range(i):
                assert not torch.equal(masks0[i], masks0[j]), (i, j)


def test_resume_passes_through_dist_train_sh(sdae_run):
    _, _, (_, resumed) = sdae_run
    assert [p['start_epoch'] for p in resumed] == [2, 2]
    assert all(sorted(p['epochs']) == [3] for p in resumed)


FAKE_SRUN = r"""#!/usr/bin/env bash
# stand-in for srun on one machine: run the command as --ntasks local tasks
# with the variables srun sets
ntasks=1
while [[ $# -gt 0 && $1 == -* ]]; do
    case $1 in
        --ntasks=*) ntasks=${1#--ntasks=} ;;
        -p) shift ;;
    esac
    shift
done
pids=()
for ((i = 0; i < ntasks; i++)); do
    SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks \
        SLURM_NODELIST=localhost "$@" &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
"""


def test_slurm_train_sh_with_a_stand_in_srun(tmp_path):
    """tools/slurm_train.sh on a CPU partition (GPUS_PER_NODE=0): the
    ranks come from SLURM_PROCID / SLURM_NTASKS, the master from
    SLURM_NODELIST, the port from PORT."""
    srun = tmp_path / 'bin' / 'srun'
    srun.parent.mkdir()
    srun.write_text(FAKE_SRUN)
    srun.chmod(0o755)
    env = dist_environ(tmp_path)
    env.update(PATH=f'{srun.parent}:{env["PATH"]}', GPUS='2',
               GPUS_PER_NODE='0', CPUS_PER_TASK='1')
    work_dir = tmp_path / 'work'
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'slurm_train.sh'), 'cpu', 'sdae',
         probe_config(tmp_path), str(work_dir), '--cfg-options',
         'train_cfg.max_epochs=1',
         f'train_dataloader.dataset.num_images={NUM_IMAGES}',
         f'train_dataloader.batch_size={BATCH}',
         'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    probes = [torch.load(work_dir / f'probe_rank{r}.pth') for r in range(2)]
    assert [(p['rank'], p['world_size']) for p in probes] == [(0, 2), (1, 2)]
    assert_same_on_both_ranks(probes[0]['epochs'][1]['teacher'],
                              probes[1]['epochs'][1]['teacher'], 'teacher')
    assert (work_dir / 'epoch_1.pth').is_file()
    assert 'Distributed launcher: slurm' in proc.stdout + proc.stderr


def test_dist_test_sh_evaluates_with_two_processes(tmp_path):
    """A checkpoint of a tiny classifier, tested by tools/dist_test.sh on 2
    processes; both ranks' predictions reach the metric."""
    data_root = tmp_path / 'data'
    make_tiny_downstream_data(str(data_root))
    config = osp.join(REPO, 'configs', 'sdae', 'benchmarks',
                      'vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py')
    cfg = Config.fromfile(config)
    root = cfg.test_dataloader.dataset.data_root.replace('data/tiny',
                                                         str(data_root))
    # an initial checkpoint is enough to check the launcher
    init_default_scope('mmpretrain')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'cls.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    env = dist_environ(tmp_path)
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_test.sh'), config, str(ckpt),
         '2', '--work-dir', str(tmp_path / 'work'), '--out',
         str(tmp_path / 'preds.pkl'), '--cfg-options',
         f'test_dataloader.dataset.data_root={root}',
         'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False',
         'model.backbone.init_cfg=None'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert 'Distributed training: True' in proc.stdout + proc.stderr
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    # every test image once, gathered from both ranks
    cfg.test_dataloader.dataset.data_root = root
    num_test = len(DATASETS.build(cfg.test_dataloader.dataset))
    assert len(preds) == num_test


# ---------------------------------------------------------------------------
# spawn workers: exact gradient / batch-split checks and an RC-MAE Runner
# ---------------------------------------------------------------------------
def model_cfgs():
    return dict(sdae=copy.deepcopy(TINY_MODEL),
                rcmae=copy.deepcopy(TINY_RCMAE))


def build(cfg, drop_path=0.1):
    cfg = copy.deepcopy(cfg)
    cfg['backbone']['drop_path_rate'] = drop_path
    torch.manual_seed(0)  # the same initial weights on every rank
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def fix_masks(backbone, noise):
    """Masks from the given noise instead of torch.rand, through whichever
    of SdAEViT's draws the algorithm uses: ``random_order`` (SdAE) or
    MAEViT's ``random_masking`` (RC-MAE)."""
    backbone.random_order = lambda batch, device=None: torch.argsort(
        noise, dim=1)
    backbone.random_masking = fixed_masking(noise)


def fixed_masking(noise):
    """MAEViT.random_masking with given noise instead of torch.rand."""

    def random_masking(x, mask_ratio=0.75):
        batch, length, dims = x.shape
        keep = int(length * (1 - mask_ratio))
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        x_masked = torch.gather(
            x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, dims))
        mask = torch.ones(batch, length)
        mask[:, :keep] = 0
        return x_masked, torch.gather(mask, 1, ids_restore), ids_restore

    return random_masking


def total_loss(losses):
    """The sum MMEngine's ``parse_losses`` back-propagates (keys with
    'loss'; SdAE's ``cos_sim`` is only logged)."""
    return sum(v for k, v in losses.items() if 'loss' in k)


def trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


def flat_grads(model):
    return torch.cat([p.grad.flatten() for p in trainable(model)])


def images(seed, batch):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 32, 32, generator=gen)


def check_ddp_gradient_is_the_mean(cfg, rank, world):
    """DDP's gradient on every rank == the mean over ranks of the gradient
    each rank computes alone (same inputs, same random draws)."""
    model = build(cfg)
    local = copy.deepcopy(model)
    ddp = MMDistributedDataParallel(module=model, device_ids=None,
                                    broadcast_buffers=False)
    assert ddp.find_unused_parameters is False
    for it in range(2):  # the 2nd backward fails if a parameter went unused
        x = images(100 * it + rank, 2)
        seed = 1000 * it + rank
        local.zero_grad(set_to_none=True)
        torch.manual_seed(seed)
        total_loss(local.loss(x, [None] * 2)).backward()
        mine = flat_grads(local)
        gathered = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(gathered, mine)
        model.zero_grad(set_to_none=True)
        torch.manual_seed(seed)
        losses = ddp(x, [None] * 2, mode='loss')
        total_loss(losses).backward()
        torch.testing.assert_close(flat_grads(model),
                                   torch.stack(gathered).mean(0),
                                   rtol=1e-5, atol=1e-7)
        assert not torch.equal(gathered[0], gathered[1])
        for teacher, _ in model.teacher_pairs():
            assert all(p.grad is None for p in teacher.parameters())


def check_two_halves_equal_the_full_batch(cfg, rank, world):
    """2 processes x batch 2 == 1 process x batch 4: same fixed masks, no
    drop path; the loss is a mean over equally many tokens per image, so
    the averaged gradient of the halves is the full-batch gradient."""
    full_x = images(7, 2 * world)
    full_noise = torch.rand(2 * world, 16,
                            generator=torch.Generator().manual_seed(8))
    rows = slice(2 * rank, 2 * rank + 2)

    reference = build(cfg, drop_path=0.0)
    model = copy.deepcopy(reference)
    fix_masks(reference.backbone, full_noise)
    ref_loss = total_loss(reference.loss(full_x, [None] * 4))
    ref_loss.backward()
    torch.optim.SGD(trainable(reference), lr=0.5).step()

    fix_masks(model.backbone, full_noise[rows])
    ddp = MMDistributedDataParallel(module=model, device_ids=None,
                                    broadcast_buffers=False)
    losses = ddp(full_x[rows], [None] * 2, mode='loss')
    loss = total_loss(losses)
    loss.backward()
    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    torch.testing.assert_close(mean_loss / world, ref_loss.detach(),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(flat_grads(model), flat_grads(reference),
                               rtol=1e-4, atol=1e-6)
    torch.optim.SGD(trainable(model), lr=0.5).step()
    for (name, p), q in zip(model.named_parameters(),
                            reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def run_rcmae_runner(work_dir, rank):
    """A short RC-MAE Runner run (per-iteration EMA) on the process group
    the worker set up; returns what the parent compares across ranks."""
    cfg = Config(dict(
        model=TINY_RCMAE, work_dir=work_dir, launcher='pytorch',
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='ProceduralShapesDataset', num_images=8,
                         image_size=32,
                         pipeline=[dict(type='LoadImageFromFile'),
                                   dict(type='PackInputs')])),
        optim_wrapper=dict(constructor='TrainableOptimWrapperConstructor',
                           optimizer=dict(type='AdamW', lr=1e-3)),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        custom_hooks=[dict(type='TeacherEMAHook', momentum=0.9,
                           end_momentum=0.99, update_interval='iter',
                           schedule='iter')],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=-1)),
        env_cfg=dict(dist_cfg=dict(backend='nccl')),
        default_scope='mmpretrain',
        randomness=dict(seed=0, diff_rank_seed=True),
        log_level='WARNING'))
    setup_distributed(cfg, 'pytorch')  # group exists: only fixes the cfg
    runner = Runner.from_cfg(cfg)
    masks = []
    backbone = runner.model.module.backbone
    original = backbone.random_masking

    def recording(x, mask_ratio=0.75):
        out = original(x, mask_ratio)
        masks.append(out[2].clone())
        return out

    backbone.random_masking = recording
    runner.train()
    model = runner.model.module
    return dict(state={k: v.clone() for k, v in model.state_dict().items()},
                masks=masks, updates=int(model.teacher_updates),
                wrapper=type(runner.model).__name__)


def worker(rank, world, port, out_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    cfg = Config(dict(randomness=dict(seed=0, diff_rank_seed=True)))
    setup_distributed(cfg, 'pytorch')  # the gloo group of this test
    init_default_scope('mmpretrain')
    for cfg in model_cfgs().values():
        check_ddp_gradient_is_the_mean(cfg, rank, world)
        check_two_halves_equal_the_full_batch(cfg, rank, world)
    result = run_rcmae_runner(osp.join(out_dir, 'rcmae'), rank)
    torch.save(result, osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


def test_gradients_batch_split_and_rcmae_teacher_with_spawned_ranks(
        tmp_path):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2)
    rank0, rank1 = (torch.load(tmp_path / f'rank{r}.pth') for r in range(2))
    assert rank0['wrapper'] == 'MMDistributedDataParallel'
    # per-iteration EMA: 2 epochs x 2 iterations
    assert rank0['updates'] == rank1['updates'] == 4
    teacher = {k: v for k, v in rank0['state'].items()
               if k.startswith(('teacher.', 'teacher_neck.'))}
    assert any(k.startswith('teacher_neck.') for k in teacher)
    for name in rank0['state']:
        assert torch.equal(rank0['state'][name], rank1['state'][name]), name
    assert len(rank0['masks']) == len(rank1['masks']) == 4
    for i, (m0, m1) in enumerate(zip(rank0['masks'], rank1['masks'])):
        assert not torch.equal(m0, m1), i
        assert all(not torch.equal(m0, rank0['masks'][j]) for j in range(i))
