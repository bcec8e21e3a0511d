# Copyright (c) OpenMMLab. All rights reserved.
"""Write tiny COCO / ADE20K / ImageNet datasets in the real layouts.

The datasets are procedural (mmsdae.datasets.tiny_downstream), small enough
for CPU smoke runs of the downstream configs, and laid out like the real
``data/`` folders, so a config switches between them by ``data_root``::

    python tools/dataset_converters/make_tiny_data.py --out data/tiny
    # -> data/tiny/coco, data/tiny/ade/ADEChallengeData2016, data/tiny/imagenet

A dataset already written with the same arguments is skipped; one written
with other arguments is regenerated; a folder not written by this tool is
never touched.
"""
import argparse
import os.path as osp
import sys

# Let the tool run from a checkout without installing mmsdae.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from mmsdae.datasets.tiny_downstream import \
    make_tiny_downstream_data  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument(
        '--out',
        default='data/tiny',
        help='output root (default: %(default)s)')
    parser.add_argument(
        '--num-train', type=int, default=8,
        help='COCO and ADE20K train images (default: %(default)s)')
    parser.add_argument(
        '--num-val', type=int, default=4,
        help='COCO and ADE20K val images (default: %(default)s)')
    parser.add_argument(
        '--image-size', type=int, default=128,
        help='COCO and ADE20K image size (default: %(default)s)')
    parser.add_argument(
        '--imagenet-num-train', type=int, default=40,
        help='ImageNet train images (default: %(default)s)')
    parser.add_argument(
        '--imagenet-num-val', type=int, default=20,
        help='ImageNet val images (default: %(default)s)')
    parser.add_argument(
        '--imagenet-image-size', type=int, default=64,
        help='ImageNet image size (default: %(default)s)')
    parser.add_argument(
        '--num-classes', type=int, default=10,
        help='ImageNet classes (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def describe(name: str, info: dict) -> str:
    """One line per dataset: what was written and how a config reads it."""
    action = 'up to date (skipped)' if info['skipped'] else 'wrote'
    counts = info['num_images']
    head = (f'{name}: {action} {counts["train"]} train + {counts["val"]} val '
            f'images in {info["root"]}')
    if name == 'coco':
        inst = info['num_instances']
        return (f'{head} ({inst["train"]} + {inst["val"]} instances)\n'
                f'    CocoDataset(data_root={info["root"]!r}, '
                f'ann_file={info["ann_file"]["val"]!r}, '
                f'data_prefix=dict(img={info["img_prefix"]["val"]!r}))')
    if name == 'ade20k':
        return (f'{head}\n    ADE20KDataset(data_root={info["root"]!r}, '
                f'data_prefix=dict(img_path={info["img_dir"]["val"]!r}, '
                f'seg_map_path={info["ann_dir"]["val"]!r}))')
    return (f'{head}\n    ImageNet(data_root={info["root"]!r}, '
            f"split='val')")


def main(argv=None):
    args = parse_args(argv)
    try:
        written = make_tiny_downstream_data(
            args.out,
            num_train=args.num_train,
            num_val=args.num_val,
            image_size=args.image_size,
            imagenet_num_train=args.imagenet_num_train,
            imagenet_num_val=args.imagenet_num_val,
            imagenet_image_size=args.imagenet_image_size,
            num_classes=args.num_classes,
            seed=args.seed)
    except (ValueError, FileExistsError) as error:
        sys.exit(f'make_tiny_data: {error}')
    for name, info in written.items():
        print(describe(name, info))
    return written


if __name__ == '__main__':
    main()
