# The CPU demos that learn (*_1xb128-24e_shape-task-64px.py): the learning
# benchmark's `gpu` budget (mmsdae/analysis/learning_signal.py, BUDGETS['gpu']
# with one loader worker), written as config pieces. 8192 unlabelled images
# of the shape task (5 outlines; colour, texture, clutter, scale, position
# and rotation random) x 24 epochs of batch 128 = 1536 iterations; the
# 10-epoch demo schedule stretched to that length (1 warm-up epoch of 10 ->
# 10 % of the iterations); DINO kNN on 2000 / 2000 held-out images every 4
# epochs. tests/test_analysis/test_learning_signal.py checks that each demo
# equals the benchmark's run of its method.
learn_images = 8192
learn_batch_size = 128
learn_epochs = 24
learn_iters = learn_epochs * (learn_images // learn_batch_size)
learn_warmup_iters = round(learn_iters / 10)

learn_dataset = dict(
    type='ProceduralShapeTaskDataset',
    num_images=learn_images,
    num_classes=5,
    seed=100,
    image_size=96,  # cropped to 64 px by the demos' pipeline
    cache_images=True)
learn_param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=False,
        begin=0,
        end=learn_warmup_iters),
    dict(
        type='CosineAnnealingLR',
        T_max=learn_iters - learn_warmup_iters,
        eta_min=1e-5,
        by_epoch=False,
        begin=learn_warmup_iters,
        end=learn_iters)
]
learn_knn_monitor = dict(
    type='KNNMonitorHook',
    interval=4,
    at_start=True,
    feature='mean',
    train_dataset=dict(
        type='ProceduralShapeTaskDataset', num_images=2000, num_classes=5,
        seed=101),
    val_dataset=dict(
        type='ProceduralShapeTaskDataset', num_images=2000, num_classes=5,
        seed=102),
    max_images=None)
