# CPU demo of SdAE that learns (tools/run_demo.sh): the 10-epoch demo's
# model, optimizer and hooks on the learning benchmark's shape task at its
# `gpu` budget (../_base_/schedules/shape-task_1xb128-24e.py), about 10 min
# on 2 CPU cores; its kNN monitor rises from the random encoder's level
# (README, "Does pre-training learn?", SdAE row).
_base_ = [
    'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py',
    '../_base_/schedules/shape-task_1xb128-24e.py'
]

train_dataloader = dict(
    batch_size=_base_.learn_batch_size,
    num_workers=1,
    dataset=dict(
        _base_.learn_dataset,
        _delete_=True,
        pipeline=_base_.train_dataloader.dataset.pipeline))
train_cfg = dict(max_epochs=_base_.learn_epochs)
param_scheduler = _base_.learn_param_scheduler
# one process: the sampler seeded with the seed itself, as in the benchmark
randomness = dict(seed=0, diff_rank_seed=False)
default_hooks = dict(
    logger=dict(interval=16), checkpoint=dict(interval=4, max_keep_ckpts=2))
custom_hooks = [
    _base_.custom_hooks[0],  # SdAETeacherEMAHook
    dict(type='TrainSummaryHook'),
    _base_.learn_knn_monitor,
]
