"""A corrupt or non-image file in the data is skipped and counted, or stops
the run naming the file, by config; an empty folder is refused with the
layout it should have."""
import cv2
import numpy as np
import pytest

from mmsdae.datasets import (BadImageError, ProceduralShapesDataset,
                             SafeLoadImageFromFile)
from mmsdae.engine import BadImageHook

PIPELINE = [dict(type='SafeLoadImageFromFile'),
            dict(type='Resize', scale=(32, 32)),
            dict(type='PackInputs')]


@pytest.fixture
def folder(tmp_path):
    """data_root/train/<class>/: 10 valid PNGs, a truncated PNG and a text
    file named .jpg."""
    root = tmp_path / 'data'
    for i in range(10):
        sub = root / 'train' / f'c{i % 2}'
        sub.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(sub / f'{i}.png'),
                    np.full((40, 40, 3), 20 * i, np.uint8))
    good = (root / 'train' / 'c0' / '0.png').read_bytes()
    (root / 'train' / 'c1' / 'cut.png').write_bytes(good[:len(good) // 2])
    (root / 'train' / 'c1' / 'notes.jpg').write_text('not an image\n')
    return root


def dataset(root, on_error):
    pipeline = [dict(PIPELINE[0], on_error=on_error)] + PIPELINE[1:]
    return ProceduralShapesDataset(
        data_root=str(root), data_prefix='train', with_label=False,
        pipeline=pipeline)


def test_raise_names_the_file_and_the_option(folder):
    ds = dataset(folder, 'raise')
    paths = [ds.get_data_info(i)['img_path'] for i in range(len(ds))]
    bad = [i for i, p in enumerate(paths)
           if p.endswith(('cut.png', 'notes.jpg'))]
    assert len(ds) == 12 and len(bad) == 2
    for i in bad:
        with pytest.raises(BadImageError) as err:
            ds[i]
        msg = str(err.value)
        assert paths[i] in msg
        assert "on_error='skip'" in msg


def folder_runner(make_runner, tiny_cfg, work_dir, folder, epochs,
                  max_skip_ratio, batch):
    """A tiny SdAE Runner training on ``folder`` with a BadImageHook."""
    runner = make_runner(work_dir, tiny_cfg, epochs,
                         dict(type='BadImageHook',
                              max_skip_ratio=max_skip_ratio), batch=batch)
    runner._train_dataloader['dataset'] = dict(
        type='ProceduralShapesDataset', data_root=str(folder),
        data_prefix='train', with_label=False, pipeline=PIPELINE)
    return runner


def test_skip_mode_trains_and_counts(folder, make_runner, tiny_cfg,
                                     tmp_path):
    runner = folder_runner(make_runner, tiny_cfg, tmp_path / 'work', folder,
                           epochs=2, max_skip_ratio=0.5, batch=4)
    runner.train()
    log = open(f'{runner.log_dir}/{runner.timestamp}.log').read().splitlines()
    assert runner.iter == 6  # 2 epochs of 12 images, batch 4
    hook = [h for h in runner.hooks if isinstance(h, BadImageHook)][0]
    skips = [line for line in log if 'Skipped unreadable image' in line]
    # Every sample index is drawn once per epoch, so both bad files are
    # skipped in each epoch; a random replacement (MMEngine's refetch) may
    # hit a bad file again, and is counted too.
    assert {m.split("'")[1].rsplit('/', 1)[1] for m in skips} == {
        'cut.png', 'notes.jpg'}
    assert hook.total == len(skips) >= 4
    epochs = [line.split(' - ')[-1] for line in log
              if 'unreadable images (' in line]
    assert epochs[0].startswith('Epoch 1: skipped ')
    assert epochs[1].startswith('Epoch 2: skipped ')
    assert epochs[1].endswith(f'({hook.total} since the start); each is '
                              'named in a warning above.')


def test_too_many_bad_images_stop_the_run(folder, make_runner, tiny_cfg,
                                          tmp_path):
    runner = folder_runner(make_runner, tiny_cfg, tmp_path / 'work', folder,
                           epochs=1, max_skip_ratio=0.1, batch=12)
    with pytest.raises(BadImageError, match='max_skip_ratio=0.1'):
        runner.train()


def test_only_bad_files_stop_without_endless_refetching(tmp_path):
    sub = tmp_path / 'train' / 'c0'
    sub.mkdir(parents=True)
    for i in range(3):
        (sub / f'{i}.jpg').write_text('text')
    ds = ProceduralShapesDataset(
        data_root=str(tmp_path), data_prefix='train', with_label=False,
        pipeline=[dict(type='SafeLoadImageFromFile',
                       max_consecutive_errors=5)])
    with pytest.raises(BadImageError, match='5 images in a row'):
        ds[0]


def test_counter_is_shared_with_dataloader_workers(folder):
    import torch
    ds = dataset(folder, 'skip')
    loader = torch.utils.data.DataLoader(
        ds, batch_size=2, num_workers=2, collate_fn=lambda batch: batch)
    assert sum(len(batch) for batch in loader) == 12
    assert ds.pipeline.transforms[0].skipped.value >= 2  # in the workers


def test_procedural_mode_drops_the_loader():
    ds = ProceduralShapesDataset(num_images=2, image_size=32,
                                 pipeline=PIPELINE)
    assert not any(isinstance(t, SafeLoadImageFromFile)
                   for t in ds.pipeline.transforms)
    assert ds[0]['inputs'].shape == (3, 32, 32)


@pytest.mark.parametrize('with_label', [False, True])
def test_empty_folder_names_folder_and_layout(tmp_path, with_label):
    (tmp_path / 'train' / 'n01440764').mkdir(parents=True)
    (tmp_path / 'train' / 'n01440764' / 'readme.txt').write_text('x')
    with pytest.raises(ValueError) as err:
        ProceduralShapesDataset(data_root=str(tmp_path), data_prefix='train',
                                with_label=with_label)
    msg = str(err.value)
    assert f"'{tmp_path}/train'" in msg and 'holds no image' in msg
    assert '<class>/<image>' in msg and 'n01440764/x.JPEG' in msg


def test_empty_annotation_file(tmp_path):
    (tmp_path / 'train.txt').write_text('')
    with pytest.raises(ValueError, match='lists no image'):
        ProceduralShapesDataset(data_root=str(tmp_path),
                                ann_file='train.txt', with_label=False)


def test_bad_options():
    with pytest.raises(ValueError, match='on_error'):
        SafeLoadImageFromFile(on_error='ignore')
    with pytest.raises(ValueError, match="on_error='skip'"):
        SafeLoadImageFromFile(ignore_empty=True)
