"""Training curves reach MMEngine's visualizer backends (local JSON and, by
config, TensorBoard): loss, learning rate, EMA momentum and the
teacher-student cosine similarity."""
import glob
import json
import os.path as osp

import pytest


def test_curves_in_local_json_and_tensorboard(make_runner, tmp_path,
                                              tiny_cfg):
    runner = make_runner(
        tmp_path, tiny_cfg, 2,
        dict(type='SdAETeacherEMAHook', update_interval='iter'),
        num_images=8,
        log_processor=dict(window_size=1),  # losses unsmoothed, as cos_sim
        visualizer=dict(
            type='UniversalVisualizer',
            vis_backends=[dict(type='LocalVisBackend'),
                          dict(type='TensorboardVisBackend')]))
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
