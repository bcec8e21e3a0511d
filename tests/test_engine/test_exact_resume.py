"""A run stopped after k iterations and resumed in a new Runner repeats the
uninterrupted run exactly (CPU, fixed seed): the same batches in the same
order, the same losses, the same momentum schedule and teacher weights, for
SdAE's per-epoch EMA and RC-MAE's per-iteration EMA, with the stop in the
middle of an epoch, on its last batch and at an epoch boundary."""
import copy
import os.path as osp

import pytest
import torch
from conftest import TINY_RCMAE
from mmengine.hooks import Hook

from mmsdae.datasets.seeded import PerSampleSeededDataset
from mmsdae.engine import ResumableEpochBasedTrainLoop, loops

# 12 images, batch 4: 3 iterations per epoch, 3 epochs
NUM_IMAGES, BATCH, EPOCHS = 12, 4, 3
PIPELINE = [  # random crops and flips: numpy / random draws per image
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0),
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
PER_EPOCH_EMA = dict(type='SdAETeacherEMAHook')  # 0.96 -> 0.99, per epoch
PER_ITER_EMA = dict(type='TeacherEMAHook', momentum=0.9, end_momentum=0.99,
                    update_interval='iter', schedule='iter')


def rcmae_model():
    cfg = copy.deepcopy(TINY_RCMAE)
    cfg['backbone']['drop_path_rate'] = 0.1  # one more random draw
    cfg['teacher_mask'] = 'same'
    return cfg


class Recorder(Hook):
    """What the run did, per iteration: loss, images, teacher momentum."""
    priority = 'LOW'  # after the EMA hooks (NORMAL)

    def __init__(self):
        self.losses, self.images, self.momenta = [], [], []
        self.loaded = 0  # images the dataset prepared

    def before_train(self, runner):
        model = runner.model
        original = model.momentum_update
        model.momentum_update = lambda m: (self.momenta.append(
            (runner.iter, m)), original(m))[-1]
        dataset = runner.train_dataloader.dataset
        if isinstance(dataset, PerSampleSeededDataset):  # the loop's wrapper
            dataset = dataset.dataset
        prepare = dataset.prepare_data

        def counted(idx):
            self.loaded += 1
            return prepare(idx)

        dataset.prepare_data = counted

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(outputs['loss'].item())
        self.images.append(
            [s.sample_idx for s in data_batch['data_samples']])


class Stop(Hook):
    """Kill the job (after the checkpoint hook saved) at iteration ``k`` or
    after epoch ``epoch``."""
    priority = 'LOWEST'

    def __init__(self, iteration=None, epoch=None):
        self.iteration, self.epoch = iteration, epoch

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.iteration:
            raise KeyboardInterrupt(
                f'pre-empted after iteration {self.iteration}')

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.epoch:
            raise KeyboardInterrupt(f'pre-empted after epoch {self.epoch}')


def run(make_runner, work_dir, model, ema, stop=None, resume=False,
        by_epoch=False, loop='ResumableEpochBasedTrainLoop', workers=0,
        accumulate=1, **loop_args):
    hooks = [ema, Recorder()] + ([stop] if stop else [])
    runner = make_runner(
        work_dir, model, EPOCHS, hooks, num_images=NUM_IMAGES, batch=BATCH,
        train_dataloader=dict(
            batch_size=BATCH,
            num_workers=workers,
            persistent_workers=workers > 0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='ProceduralShapesDataset',
                         num_images=NUM_IMAGES, image_size=40,
                         pipeline=PIPELINE)),
        train_cfg=dict(type=loop, max_epochs=EPOCHS, **loop_args),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='AtomicCheckpointHook', by_epoch=by_epoch,
                            interval=1)),
        randomness=dict(seed=0, diff_rank_seed=True),
        optim_wrapper=dict(
            constructor='TrainableOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-3),
            accumulative_counts=accumulate),
        resume=resume)
    if stop is None:
        runner.train()
    else:
        with pytest.raises(KeyboardInterrupt, match='pre-empted'):
            runner.train()
    if workers:  # stop the persistent workers now: left to the garbage
        # collector, they are joined later with a 5 s timeout each (~30 s)
        runner.train_dataloader._iterator._shutdown_workers()
    # make_runner deep-copies the hooks: read the registered one
    return runner, next(h for h in runner.hooks if isinstance(h, Recorder))


def teacher_state(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


@pytest.fixture(scope='module')
def references(tmp_path_factory):
    """Uninterrupted runs, built once per model / EMA kind."""
    cache = {}

    def get(make_runner, key, model, ema, workers, accumulate=1):
        key = f'{key}_{workers}_{accumulate}'
        if key not in cache:
            runner, record = run(make_runner,
                                 tmp_path_factory.mktemp(f'ref_{key}'),
                                 model, ema, workers=workers,
                                 accumulate=accumulate)
            cache[key] = (teacher_state(runner), record)
        return cache[key]

    return get


CASES = {
    # name: (model, ema, where the job stops, checkpoint by epoch)
    'sdae_mid_epoch': ('sdae', PER_EPOCH_EMA, dict(iteration=4), False),
    'sdae_last_batch': ('sdae', PER_EPOCH_EMA, dict(iteration=6), False),
    'sdae_epoch_end': ('sdae', PER_EPOCH_EMA, dict(epoch=1), True),
    'sdae_iter_ema_mid_epoch': ('sdae', PER_ITER_EMA, dict(iteration=5),
                                False),
    'rcmae_mid_epoch': ('rcmae', PER_ITER_EMA, dict(iteration=2), False),
    # a batch sampler the loop cannot cut: it loads and drops the batches
    'sdae_mid_epoch_load_and_drop': ('sdae', PER_EPOCH_EMA, dict(iteration=5),
                                     False),
    # 2 persistent DataLoader workers drawing random crops and flips
    'sdae_mid_epoch_workers': ('sdae', PER_EPOCH_EMA, dict(iteration=4),
                               False),
    'rcmae_mid_epoch_workers': ('rcmae', PER_ITER_EMA, dict(iteration=5),
                                False),
    # 2 accumulated micro-batches per step (iterations 0-1, 2-3, 4-5, ...):
    # stopped after 5 of 9 (0-4), one micro-batch into the group 4-5 (in
    # epoch 1, iterations 3-5), whose gradient the resume recomputes
    'rcmae_mid_group_accumulate': ('rcmae', PER_ITER_EMA, dict(iteration=5),
                                   False),
}


@pytest.mark.slow
@pytest.mark.parametrize('case', list(CASES))
def test_stopped_and_resumed_run_repeats_the_uninterrupted_one(
        case, make_runner, tiny_cfg, references, tmp_path, monkeypatch):
    name, ema, stop, by_epoch = CASES[case]
    if case.endswith('load_and_drop'):
        monkeypatch.setattr(loops, 'BatchSampler', type('Other', (), {}))
    model = tiny_cfg if name == 'sdae' else rcmae_model()
    workers = 2 if case.endswith('workers') else 0
    accumulate = 2 if case.endswith('accumulate') else 1
    ref_state, ref = references(make_runner, f'{name}_{ema["type"]}', model,
                                ema, workers, accumulate)
    assert len(ref.losses) == EPOCHS * NUM_IMAGES // BATCH

    first, before = run(make_runner, tmp_path, model, ema, Stop(**stop),
                        by_epoch=by_epoch, workers=workers,
                        accumulate=accumulate)
    k = len(before.losses)
    assert 0 < k < len(ref.losses)
    second, after = run(make_runner, tmp_path, model, ema, resume=True,
                        by_epoch=by_epoch, workers=workers,
                        accumulate=accumulate)
    assert isinstance(second.train_loop, ResumableEpochBasedTrainLoop)

    # the same images, in the same order, and no batch twice
    assert before.images + after.images == ref.images
    # bit-identical losses and momentum schedule
    assert before.losses + after.losses == ref.losses
    assert before.momenta + after.momenta == ref.momenta
    assert second.iter == len(ref.losses) and second.epoch == EPOCHS
    state = teacher_state(second)
    assert state.keys() == ref_state.keys()
    for key, value in ref_state.items():
        assert torch.equal(state[key], value), key
    assert int(second.model.teacher_updates) == len(ref.momenta)
    # the batches trained before the stop are not loaded again, unless the
    # batch sampler cannot be cut (workers load in other processes)
    skipped = k % (NUM_IMAGES // BATCH) if case.endswith('drop') else \
        k % accumulate  # the replayed micro-batches
    assert after.loaded == (0 if workers else
                            (len(after.images) + skipped) * BATCH)


@pytest.mark.slow
def test_workers_draw_the_augmentations_the_main_process_draws(
        make_runner, tiny_cfg, references, tmp_path):
    """Each sample's crop and flip are a function of (seed, epoch, index):
    2 workers train exactly as the main process alone; without the
    per-sample seeds (MMEngine's per-worker seeds) they do not."""
    key = f'sdae_{PER_EPOCH_EMA["type"]}'
    state_0, ref_0 = references(make_runner, key, tiny_cfg, PER_EPOCH_EMA, 0)
    state_2, ref_2 = references(make_runner, key, tiny_cfg, PER_EPOCH_EMA, 2)
    assert ref_2.images == ref_0.images and ref_2.losses == ref_0.losses
    assert all(torch.equal(state_2[k], v) for k, v in state_0.items())

    runner, plain = run(make_runner, tmp_path, tiny_cfg, PER_EPOCH_EMA,
                        workers=2, per_sample_seed=False)
    assert plain.images == ref_0.images  # same order, other crops
    assert plain.losses != ref_0.losses


@pytest.mark.slow
def test_mmengine_loop_trains_the_interrupted_epoch_again(
        make_runner, tiny_cfg, tmp_path):
    """Why the loop exists: MMEngine's EpochBasedTrainLoop, resumed from a
    mid-epoch checkpoint, starts that epoch from its first batch again."""
    loop = 'EpochBasedTrainLoop'
    _, before = run(make_runner, tmp_path, tiny_cfg, PER_EPOCH_EMA,
                    Stop(iteration=4), loop=loop)
    second, after = run(make_runner, tmp_path, tiny_cfg, PER_EPOCH_EMA,
                        resume=True, loop=loop)
    assert after.images[0] == before.images[3]  # batch 1 of epoch 2 again
    assert len(before.losses) + len(after.losses) == 9 + 1


def test_checkpoint_records_the_position_in_the_epoch(make_runner, tiny_cfg,
                                                      tmp_path):
    run(make_runner, tmp_path, tiny_cfg, PER_EPOCH_EMA, Stop(iteration=4))
    # weights_only loading, as MMEngine does under torch >= 2.6
    ckpt = torch.load(osp.join(tmp_path, 'iter_4.pth'), map_location='cpu',
                      weights_only=True)
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == 4
    info = ckpt['message_hub']['runtime_info']['exact_resume']
    assert info == dict(epoch=1, epoch_start_iter=3, iters_per_epoch=3,
                        sampler_seed=info['sampler_seed'])
    assert isinstance(info['sampler_seed'], int)
