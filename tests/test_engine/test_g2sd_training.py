"""G2SD generic distillation end to end on the CPU: a tiny MAE teacher
saved to a file, the tiny G2SD config trained by MMEngine's Runner (the
teacher loaded from the file, frozen, kept out of the checkpoints and back
on resume), the student exported with tools/model_converters/sdae_to_vit.py
and loaded into the tiny downstream classifier."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.registry import MODELS

from mmsdae.engine import TrainSummaryHook
from mmsdae.utils.checkpoint import build_backbone_from_config
from tool_loader import load_tool
from conftest import TINY_DEMO_RUN

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
G2SD = osp.join(ROOT, 'configs', 'g2sd',
                'g2sd_vit-tiny-p8_1xb32-10e_procedural-64px.py')
TEACHER = osp.join(ROOT, 'configs', 'g2sd',
                   'mae_vit-d192-p8_1xb32-10e_procedural-64px.py')
LINEAR = osp.join(ROOT, 'configs', 'sdae', 'benchmarks',
                  'vit-tiny-p8_1xb16-linear-coslr-10e_tiny-in1k-64px.py')
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'sdae_to_vit.py')


def save_tiny_teacher(path):
    """The demo teacher MAE of the config, randomly initialized, saved as
    its own training run would save it (``state_dict`` with backbone.* /
    neck.*)."""
    torch.manual_seed(0)
    mae = MODELS.build(Config.fromfile(TEACHER).model)
    mae.init_weights()
    torch.save(dict(state_dict=mae.state_dict(), meta=dict()), path)
    return mae


def tiny_cfg(work_dir, teacher, **options):
    cfg = Config.fromfile(G2SD)
    cfg.merge_from_dict({
        'work_dir': str(work_dir),
        'model.teacher.checkpoint': str(teacher),
        **TINY_DEMO_RUN,
        **options
    })
    return cfg


class Snapshot(Hook):
    """Student and teacher weights when training starts (after
    init_weights and any checkpoint loading)."""

    def before_train(self, runner):
        model = runner.model
        self.student = {k: v.clone()
                        for k, v in model.backbone.state_dict().items()}
        self.teacher = {k: v.clone() for k, v in
                        model.teacher.teacher_state_dict().items()}


@pytest.mark.slow
def test_teacher_file_to_distillation_to_downstream(tmp_path):
    mae = save_tiny_teacher(tmp_path / 'mae_full.pth')
    source = mae.state_dict()
    runner = Runner.from_cfg(tiny_cfg(tmp_path / 'g2sd',
                                      tmp_path / 'mae_full.pth'))
    snapshot = Snapshot()
    runner.register_hook(snapshot)
    runner.train()
    model = runner.model

    # the teacher is the file's, before and after training; the student moved
    for key, value in model.teacher.teacher_state_dict().items():
        assert torch.equal(snapshot.teacher[key], source[key]), key
        assert torch.equal(value, source[key]), key
    assert any(not torch.equal(v, snapshot.student[k])
               for k, v in model.backbone.state_dict().items())
    summary = next(h for h in runner.hooks
                   if isinstance(h, TrainSummaryHook)).summary
    assert summary['iterations'] == 4
    assert torch.isfinite(torch.tensor(summary['loss_end']))
    # the teacher is not in the optimizer
    optimized = {id(p) for g in runner.optim_wrapper.optimizer.param_groups
                 for p in g['params']}
    assert not optimized & {id(p) for p in model.teacher.parameters()}

    # checkpoints: the student, the teacher's fingerprint only
    ckpt = torch.load(tmp_path / 'g2sd' / 'epoch_2.pth', map_location='cpu',
                      weights_only=False)
    state = ckpt['state_dict']
    assert [k for k in state if k.startswith('teacher.')] == [
        'teacher.fingerprint'
    ]
    assert any(k.startswith('backbone.layers.') for k in state)

    # resume from epoch 1: the teacher comes back from its file, and the
    # resumed run reaches the same student as the uninterrupted one
    resumed_cfg = tiny_cfg(tmp_path / 'resumed', tmp_path / 'mae_full.pth')
    resumed_cfg.resume = True
    resumed_cfg.load_from = str(tmp_path / 'g2sd' / 'epoch_1.pth')
    resumed = Runner.from_cfg(resumed_cfg)
    resumed.train()
    for key, value in resumed.model.teacher.teacher_state_dict().items():
        assert torch.equal(value, source[key]), key
    for key, value in resumed.model.backbone.state_dict().items():
        torch.testing.assert_close(value, model.backbone.state_dict()[key])

    # export the student and load it into the tiny downstream classifier
    dst = tmp_path / 'g2sd_student.pth'
    report = load_tool(TOOL).main([
        str(tmp_path / 'g2sd' / 'epoch_2.pth'), str(dst), '--config', LINEAR
    ])
    assert report.encoder == 'student'
    assert report.missing == [] and report.unexpected == []
    backbone = build_backbone_from_config(LINEAR)
    exported = torch.load(dst, map_location='cpu')['state_dict']
    result = backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in exported.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(backbone.state_dict()[key], value)


def test_demo_config_builds_on_its_teacher_file(tmp_path):
    """The demo G2SD loads the demo teacher MAE's checkpoint: a 192-wide
    MAE distilled into the 96-wide encoder of the downstream demo
    configs, target = block 2 of the teacher's 4 decoder blocks."""
    save_tiny_teacher(tmp_path / 'mae_full.pth')
    cfg = tiny_cfg(tmp_path, tmp_path / 'mae_full.pth')
    model = MODELS.build(cfg.model)
    assert model.teacher.backbone.embed_dims == 192
    assert model.backbone.embed_dims == 96
    assert (model.target_block, len(model.teacher.neck.decoder_blocks)) == (
        2, 4)
    downstream = Config.fromfile(LINEAR).model.backbone
    assert downstream.arch == Config.fromfile(G2SD).model.backbone.arch
    cfg.model.teacher.checkpoint = str(tmp_path / 'absent.pth')
    with pytest.raises(FileNotFoundError, match='model.teacher.checkpoint'):
        MODELS.build(cfg.model)


def _ddp_worker(rank, world, port, teacher, out_dir):
    """One rank: the demo G2SD in MMDistributedDataParallel, one step on
    this rank's own images."""
    import os

    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel
    from mmengine.registry import init_default_scope

    import mmsdae  # noqa: F401
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(G2SD).model
    cfg.teacher.checkpoint = teacher
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    # as the Runner wraps it (find_unused_parameters=False: every trainable
    # parameter must get a gradient, the frozen teacher has none to reduce)
    ddp = MMDistributedDataParallel(module=model, broadcast_buffers=False,
                                    find_unused_parameters=False)
    torch.manual_seed(10 + rank)
    loss = ddp(torch.randn(2, 3, 64, 64), [], mode='loss')['loss']
    loss.backward()
    torch.save(dict(
        grads={n: p.grad.clone() for n, p in model.named_parameters()
               if p.grad is not None},
        teacher_grads=[n for n, p in model.teacher.named_parameters()
                       if p.grad is not None or p.requires_grad],
        teacher=model.teacher.teacher_state_dict(),
        trainable=[n for n, p in model.named_parameters()
                   if p.requires_grad]),
               osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_reduces_student_gradients_and_leaves_the_teacher(tmp_path):
    import socket

    import torch.multiprocessing as mp
    save_tiny_teacher(tmp_path / 'mae_full.pth')
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path / 'mae_full.pth'),
                                str(tmp_path)), nprocs=2)
    rank0, rank1 = (torch.load(tmp_path / f'rank{r}.pth') for r in range(2))
    assert rank0['teacher_grads'] == [] == rank1['teacher_grads']
    assert not any(n.startswith('teacher.') for n in rank0['trainable'])
    # every trainable parameter got a gradient, the same on both ranks
    # (averaged by DDP over the two ranks' different images)
    assert sorted(rank0['grads']) == sorted(rank0['trainable'])
    for name, grad in rank0['grads'].items():
        torch.testing.assert_close(grad, rank1['grads'][name])
    for name, value in rank0['teacher'].items():
        assert torch.equal(value, rank1['teacher'][name]), name
