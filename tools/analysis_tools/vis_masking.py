"""Draw the masking of one batch and what the decoder produced.

One row per image: the input; the student's mask (visible patches shown,
masked ones greyed) with the teacher's sequences in colour (SdAE Sec. 2.2:
each multi-fold fold, Fig. 4(b), in its own colour; the teacher crop; the
full image) or RC-MAE-D's own teacher mask outlined (RC-MAE Sec. 5); and
the decoder's output: SdAE's per-token cosine between prediction and
normalised teacher feature (Eq. 3 / Eq. 4) as a heat map, MAE / RC-MAE's
pixel reconstruction (norm_pix undone with each patch's statistics) alone
and with the visible patches pasted, plus RC-MAE's teacher reconstruction.

The masks come from the model's own code path with a fixed seed, as a
training step with that seed draws them. Writes, under --out-dir,
<config name>_seed<seed>.png and .json (per image: visible / masked ids,
teacher sequences, target positions, per-token cosine or per-patch MSE).

    python tools/analysis_tools/vis_masking.py \\
        configs/sdae/sdae_vit-tiny-p8_1xb128-24e_shape-task-64px.py \\
        work_dirs/demo/epoch_24.pth
    python tools/analysis_tools/vis_masking.py CONFIG CKPT --images DIR \\
        --num-images 8 --seed 1 --out-dir work_dirs/vis_masking
"""
import argparse
import os.path as osp
import sys
import time

_START = time.perf_counter()
# Let the tool run from a checkout without installing mmsdae.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
from mmsdae.analysis.masking import visualize_masking  # noqa: E402

DEFAULT_OUT_DIR = osp.join('work_dirs', 'vis_masking')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.split('\n')[2:]))
    parser.add_argument('config', help='the pre-training config (SdAE, '
                        'RC-MAE or MAE) the checkpoint was trained with')
    parser.add_argument('checkpoint', help='a whole pre-training checkpoint '
                        '(e.g. work_dirs/demo/epoch_24.pth)')
    parser.add_argument(
        '--images', default=None,
        help='folder of images (first --num-images in path order, resized '
        'and centre-cropped); default: the embedded procedural images')
    parser.add_argument('--num-images', type=int, default=4,
                        help='images in the batch = figure rows '
                        '(default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the masks (and of the procedural '
                        'images) (default: %(default)s)')
    parser.add_argument('--out-dir', default=DEFAULT_OUT_DIR,
                        help='output folder (default: %(default)s)')
    args = parser.parse_args(argv)
    if args.num_images < 1:
        parser.error(f'--num-images must be >= 1, got {args.num_images}')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        out = visualize_masking(
            args.config, args.checkpoint, images=args.images,
            num_images=args.num_images, seed=args.seed, out_dir=args.out_dir)
    except (FileNotFoundError, KeyError, ValueError, TypeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and \
            error.args else error
        print(f'vis_masking: error: {message}', file=sys.stderr)
        return 1
    losses = ', '.join(f'{k} {v:.4f}' for k, v in out['losses'].items())
    print(f'{out["description"]}: {losses}')
    print(f'figure: {out["png"]}')
    print(f'json:   {out["json"]}')
    print(f'done in {time.perf_counter() - _START:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
