default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmsdae'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook that writes to a temporary name and renames (a kill
    # while saving leaves the previous checkpoint and last_checkpoint valid)
    checkpoint=dict(type='AtomicCheckpointHook', interval=1,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # load_from / resume with a checkpoint of another architecture is an
    # error naming the tensors (MMEngine only warns and keeps random values)
    checkpoint_check=dict(type='CheckpointCompatibilityHook'),
)
# Pre-training configs train with train_cfg=dict(
#     type='ResumableEpochBasedTrainLoop', ...): a run stopped at any
# iteration and resumed repeats the uninterrupted one (mmsdae/engine/loops.py)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=True)
log_processor = dict(window_size=10, custom_cfg=[dict(data_src='', method='mean', window_size='global')])
