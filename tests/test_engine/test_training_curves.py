"""Training curves reach MMEngine's visualizer backends (local JSON and, by
config, TensorBoard): loss, learning rate, EMA momentum and the
teacher-student cosine similarity."""
import glob
import json
import os.path as osp

import pytest
from mmengine.runner import Runner


def test_curves_in_local_json_and_tensorboard(tmp_path, tiny_cfg):
    cfg = dict(
        model=tiny_cfg,
        work_dir=str(tmp_path),
        train_dataloader=dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(
                type='ProceduralShapesDataset',
                num_images=8,
                image_size=32,
                pipeline=[dict(type='LoadImageFromFile'),
                          dict(type='PackInputs')])),
        optim_wrapper=dict(
            constructor='TrainableOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-3)),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        custom_hooks=[dict(type='SdAETeacherEMAHook',
                           update_interval='iter')],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(window_size=1),  # losses unsmoothed, as cos_sim
        visualizer=dict(
            type='UniversalVisualizer',
            vis_backends=[dict(type='LocalVisBackend'),
                          dict(type='TensorboardVisBackend')]),
        default_scope='mmpretrain',
        randomness=dict(seed=0),
        log_level='WARNING')
    runner = Runner(**cfg)
    runner.train()
    scalars = glob.glob(osp.join(str(tmp_path), '*', 'vis_data',
                                 'scalars.json'))
    records = [json.loads(line) for line in open(scalars[0])]
    assert len(records) == 4  # 2 epochs x 2 iterations
    for key in ('loss', 'lr', 'cos_sim', 'teacher_momentum'):
        assert all(key in r for r in records), (key, records[0])
    # cos_sim is logged, not optimised: 1 - loss for Eq. 4 with shift 1
    for r in records:
        assert abs(r['cos_sim'] - (1 - r['loss'])) < 1e-3
    events = glob.glob(osp.join(str(tmp_path), '*', 'vis_data',
                                'events.out.tfevents.*'))
    assert len(events) == 1
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    board = EventAccumulator(events[0])
    board.Reload()
    for key in ('loss', 'cos_sim', 'teacher_momentum'):
        values = [e.value for e in board.Scalars(key)]
        assert values == [pytest.approx(r[key]) for r in records], key
