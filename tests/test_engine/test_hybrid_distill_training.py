"""Hybrid Distill end to end on the CPU: two tiny teachers saved to files
in the layouts of the demo's teacher runs (T_m: the MAE demo's training
checkpoint; T_c: the tiny fine-tuned classifier), the tiny Hybrid Distill
config trained by MMEngine's Runner with the masking schedule stepping in,
the teachers frozen and kept out of optimizer and checkpoints, the student
exported with tools/model_converters/sdae_to_vit.py and loaded into the tiny
downstream classifier."""
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
HD = osp.join(ROOT, 'configs', 'hybrid_distill',
              'hybrid-distill_vit-tiny-p8_1xb32-10e_procedural-64px.py')
MAE = osp.join(ROOT, 'configs', 'rcmae',
               'mae_vit-tiny-p8_1xb32-10e_procedural-64px.py')
FINETUNE = osp.join(ROOT, 'configs', 'sdae', 'benchmarks',
                    'vit-tiny-p8_1xb16-coslr-2e_tiny-in1k-64px.py')
LINEAR = osp.join(ROOT, 'configs', 'sdae', 'benchmarks',
                  'vit-tiny-p8_1xb16-linear-coslr-10e_tiny-in1k-64px.py')
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'sdae_to_vit.py')


def save_tiny_teachers(tmp_path):
    """T_m = the MAE demo model, T_c = the tiny fine-tuning classifier,
    randomly initialised and saved as their own runs would save them;
    returns ``(t_c, t_m, path_c, path_m)``."""
    torch.manual_seed(0)
    mae = MODELS.build(Config.fromfile(MAE).model)
    cls_cfg = Config.fromfile(FINETUNE).model
    cls_cfg.backbone.init_cfg = None  # no pre-trained encoder file here
    cls_cfg.train_cfg = None
    classifier = MODELS.build(cls_cfg)
    # constructor initialisation (init_weights is slow and not needed), then
    # every tensor perturbed: norms away from 1 / 0, a wrong key would show
    with torch.no_grad():
        for value in list(mae.state_dict().values()) + list(
                classifier.state_dict().values()):
            if value.is_floating_point():
                value.add_(0.05 * torch.randn_like(value))
    path_c, path_m = tmp_path / 'classifier.pth', tmp_path / 'mae.pth'
    torch.save(dict(state_dict=classifier.state_dict(), meta=dict()), path_c)
    torch.save(dict(state_dict=mae.state_dict(), meta=dict()), path_m)
    return classifier, mae, path_c, path_m


def tiny_cfg(work_dir, path_c, path_m, **options):
    cfg = Config.fromfile(HD)
    cfg.merge_from_dict({
        'work_dir': str(work_dir),
        'model.teacher_c.checkpoint': str(path_c),
        'model.teacher_m.checkpoint': str(path_m),
        # 2 epochs: no masking in epoch 0, 16 of 64 patches in epoch 1
        'model.token_masking.stages': [(0.0, 0.0), (0.5, 0.25)],
        **TINY_DEMO_RUN,
        **options
    })
    return cfg


class Record(Hook):
    """Student and teacher weights when training starts, and what every
    iteration logged."""

    def before_train(self, runner):
        model = runner.model
        self.student = {k: v.clone()
                        for k, v in model.backbone.state_dict().items()}
        self.teachers = {
            name: {k: v.clone() for k, v in
                   getattr(model, name).teacher_state_dict().items()}
            for name in ('teacher_c', 'teacher_m')
        }
        self.logs = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.logs.append((runner.epoch, dict(outputs)))


@pytest.mark.slow
def test_teacher_files_to_distillation_to_downstream(tmp_path):
    classifier, mae, path_c, path_m = save_tiny_teachers(tmp_path)
    runner = Runner.from_cfg(tiny_cfg(tmp_path / 'hd', path_c, path_m))
    record = Record()
    runner.register_hook(record)
    runner.train()
    model = runner.model

    # the teachers are their files', before and after training
    sources = dict(teacher_c=classifier.state_dict(),
                   teacher_m=mae.state_dict())
    for name, source in sources.items():
        for key, value in getattr(model, name).teacher_state_dict().items():
            assert key.startswith('backbone.'), key
            assert torch.equal(record.teachers[name][key], source[key]), key
            assert torch.equal(value, source[key]), key
    # the student moved
    assert any(not torch.equal(v, record.student[k])
               for k, v in model.backbone.state_dict().items())
    summary = next(h for h in runner.hooks
                   if isinstance(h, TrainSummaryHook)).summary
    assert summary['iterations'] == 4
    assert torch.isfinite(torch.tensor(summary['loss_end']))
    # the schedule: no masking in epoch 0, 16 of 64 patches in epoch 1;
    # both terms every step
    assert [(e, float(log['masked_tokens'])) for e, log in record.logs] == [
        (0, 0.0), (0, 0.0), (1, 16.0), (1, 16.0)
    ]
    for _, log in record.logs:
        assert log['loss_feature'] > 0 and log['loss_relation'] > 0
    # the teachers are not in the optimizer
    optimized = {id(p) for g in runner.optim_wrapper.optimizer.param_groups
                 for p in g['params']}
    for name in sources:
        assert not optimized & {
            id(p) for p in getattr(model, name).parameters()
        }

    # checkpoints: the student and projection, only teacher fingerprints
    ckpt = torch.load(tmp_path / 'hd' / 'epoch_2.pth', map_location='cpu',
                      weights_only=False)
    state = ckpt['state_dict']
    assert sorted(k for k in state if k.startswith('teacher')) == [
        'teacher_c.fingerprint', 'teacher_m.fingerprint'
    ]
    assert any(k.startswith('backbone.layers.') for k in state)
    assert 'head.proj.weight' in state

    # export the student and load it into the tiny downstream classifier
    dst = tmp_path / 'hd_student.pth'
    report = load_tool(TOOL).main([
        str(tmp_path / 'hd' / 'epoch_2.pth'), str(dst), '--config', LINEAR
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


def test_demo_config_builds_on_its_teacher_files(tmp_path):
    """The demo config loads checkpoints laid out as the MAE demo's and the
    tiny fine-tuned classifier's runs write them: 96 x 4 student, teachers
    and downstream encoder on the same 8 x 8 patch grid."""
    _, _, path_c, path_m = save_tiny_teachers(tmp_path)
    cfg = tiny_cfg(tmp_path, path_c, path_m)
    model = MODELS.build(cfg.model)
    assert model.backbone.embed_dims == 96
    assert model.teacher_c.backbone.embed_dims == 96
    assert len(model.teacher_m.backbone.layers) == 4
    assert model.relation_layers == [0, 1, 2]
    # the classifier's fc_norm (ln2) and head are reported, not loaded
    unused = model.teacher_c.load_report['unused']
    assert any(k.startswith('head.') for k in unused)
    downstream = Config.fromfile(LINEAR).model.backbone
    assert downstream.arch == Config.fromfile(HD).model.backbone.arch
    cfg.model.teacher_m.checkpoint = str(tmp_path / 'absent.pth')
    with pytest.raises(FileNotFoundError, match='model.teacher_m.checkpoint'):
        MODELS.build(cfg.model)
