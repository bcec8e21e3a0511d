# Copyright (c) OpenMMLab. All rights reserved.
"""Write tiny ImageNet-C / -A / -R / -Sketch in the official layouts.

Made from the tiny ImageNet's val images (mmsdae.datasets.tiny_robustness),
so the tiny fine-tuning config's model is evaluated on them by the tiny
robustness configs (configs/rcmae/benchmarks/vit-tiny-p8_test_tiny-*)::

    python tools/dataset_converters/make_tiny_robustness_data.py \
        --out data/tiny
    # -> data/tiny/imagenet-c, imagenet-a, imagenet-r, imagenet-sketch

A set already written with the same arguments is skipped; one written with
other arguments is regenerated; a folder not written by this tool is never
touched. ImageNet-C needs the imagecorruptions package
(requirements/optional.txt).
"""
import argparse
import os.path as osp
import sys

# Let the tool run from a checkout without installing mmsdae.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
from mmsdae.datasets.tiny_robustness import \
    make_tiny_robustness_data  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        default='data/tiny',
        help='output root (default: %(default)s)')
    parser.add_argument(
        '--num-images', type=int, default=20,
        help='ImageNet-C: val images per corruption and severity '
        '(default: %(default)s)')
    parser.add_argument(
        '--per-class', type=int, default=4,
        help='-A / -R / -Sketch: images per class (default: %(default)s)')
    parser.add_argument('--image-size', type=int, default=64)
    parser.add_argument('--num-classes', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        written = make_tiny_robustness_data(
            args.out,
            num_images=args.num_images,
            per_class=args.per_class,
            image_size=args.image_size,
            num_classes=args.num_classes,
            seed=args.seed)
    except (FileExistsError, ImportError, ValueError) as exc:
        sys.exit(f'make_tiny_robustness_data.py: error: {exc}')
    for name, info in written.items():
        action = 'up to date (skipped)' if info['skipped'] else 'wrote'
        detail = (f"{info['num_images']} images x 15 corruptions x 5 "
                  'severities' if name == 'c' else
                  f"images per class {info['class_counts']}")
        print(f"imagenet-{name}: {action} {info['root']} ({detail})")


if __name__ == '__main__':
    main()
