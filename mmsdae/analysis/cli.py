"""Command-line pieces the attention tools share (``vis_attention.py``,
``attention_distance.py``): the image and encoder options, per-model option
lists and the error exit."""
import argparse
import sys
from typing import Callable, List, Sequence

from .checkpoints import ENCODER_CHOICES


def add_image_arguments(parser: argparse.ArgumentParser,
                        num_images: int, num_images_help: str) -> None:
    """``--images --num-images --encoder --img-size --seed``."""
    parser.add_argument(
        '--images', help='folder of images (default: the built-in '
        'procedural images)')
    parser.add_argument('--num-images', type=int, default=num_images,
                        help=f'{num_images_help} (default: %(default)s)')
    parser.add_argument(
        '--encoder', nargs='+', default=['auto'], choices=ENCODER_CHOICES,
        help='student (backbone), teacher (EMA teacher of SdAE / RC-MAE) or '
        "auto (the model's feature_encoder); one value for all models or "
        'one per model (default: auto)')
    parser.add_argument('--img-size', type=int,
                        help="image side (default: each model's img_size)")
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the procedural images (default: 0)')


def per_model(values: Sequence, count: int, what: str) -> List:
    """Expand a 1-or-N option list to ``count`` values."""
    if len(values) == 1:
        return list(values) * count
    if len(values) != count:
        raise ValueError(f'--{what} got {len(values)} values for {count} '
                         f'models: give one value or one per model.')
    return list(values)


def unique_labels(labels: List[str]) -> List[str]:
    """Append [1], [2] ... to labels that would otherwise repeat."""
    if len(set(labels)) == len(labels):
        return labels
    return [f'{label} [{i + 1}]' for i, label in enumerate(labels)]


def run_cli(main: Callable[[], object]) -> None:
    """Run ``main``; a bad input (missing or unreadable file, a checkpoint
    that does not fit) exits with ``error: <message>``, not a traceback."""
    try:
        main()
    except (FileNotFoundError, KeyError, ValueError, TypeError) as error:
        message = error.args[0] if error.args else str(error)
        sys.exit(f'error: {message}')
