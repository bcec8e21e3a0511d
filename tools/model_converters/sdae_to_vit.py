"""Export a pre-trained encoder (SdAE, RC-MAE, MAE) for downstream use.

Writes a checkpoint whose ``state_dict`` holds one encoder under the
``backbone.`` prefix, the layout mmpretrain / mmdet / mmseg ViT configs load
with ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``
into an mmpretrain ``VisionTransformer``. The student is exported by default
for SdAE (SdAE Sec. 4.4: "we ... use the student model as the final
model"), the EMA teacher for RC-MAE (RC-MAE appendix F.1); ``--encoder``
chooses explicitly.

Sources (``--src-format auto`` detects which):

* mmsdae: a pre-training checkpoint of this repository (student under
  ``backbone.``, teacher under ``teacher.``), or a file this tool wrote;
* timm: the official MAE / SdAE releases and DINO's released backbone
  (timm ViT keys, optionally in ``{'model': ...}`` / ``{'state_dict': ...}``
  and ``module.``-prefixed); ``--src-prefix encoder.`` (or ``teacher.`` ...)
  picks a sub-module first. Decoder / mask-token / head keys are dropped;
  any other unknown key is an error unless ``--allow-unknown``;
* dino: DINO's full training checkpoint (its teacher backbone by default,
  ``--encoder student`` for the student; the projection heads dropped).

With ``--config`` the result is checked against that config's
``model.backbone`` (missing / unexpected keys reported, shape mismatches
refused); a different patch grid needs ``--interpolate-pos-embed``
(``--img-size`` / ``--patch-size`` give the grid without a config).
The output is written atomically; an existing destination needs
``--force``.

    python tools/model_converters/sdae_to_vit.py work_dirs/x/epoch_300.pth \
        sdae_vit-b_student.pth [--encoder teacher]
    python tools/model_converters/sdae_to_vit.py mae_pretrain_vit_base.pth \
        mae_vit-b.pth --config <downstream config> [--interpolate-pos-embed]
"""
import argparse
import os
import os.path as osp
import sys

# Let the tool run from a checkout without installing mmsdae.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
# Importing mmsdae registers its modules and allow-lists MMEngine checkpoint
# types; ``extract_encoder`` / ``SOURCES`` stay importable from here.
from mmsdae.utils.checkpoint import (  # noqa: E402
    FORMATS, build_backbone_from_config, convert_checkpoint, extract_encoder,
    load_checkpoint_file, save_checkpoint)
from mmsdae.utils.checkpoint import ENCODER_PREFIXES as SOURCES  # noqa: E402

__all__ = ['SOURCES', 'extract_encoder', 'main']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.split('\n')[2:]))
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument(
        '--src-format',
        choices=('auto', ) + FORMATS,
        default='auto',
        help='source layout (default: detected from the key names)')
    parser.add_argument(
        '--encoder',
        choices=sorted(SOURCES),
        default=None,
        help='encoder of an mmsdae or DINO checkpoint (default: what the '
        'method transfers: the student for SdAE, the teacher for RC-MAE and '
        'DINO)')
    parser.add_argument(
        '--src-prefix',
        metavar='PREFIX',
        help='take only the keys under PREFIX (e.g. encoder. or teacher. of '
        'a released SdAE checkpoint), prefix removed')
    parser.add_argument(
        '--allow-unknown',
        action='store_true',
        help='drop (and report) unknown keys of a timm-format file instead '
        'of failing')
    parser.add_argument(
        '--config',
        metavar='CFG',
        help='downstream config whose model.backbone the result must load '
        'into')
    parser.add_argument(
        '--img-size',
        type=int,
        metavar='N',
        help='target image size without --config (pos_embed grid N/P)')
    parser.add_argument(
        '--patch-size',
        type=int,
        metavar='P',
        help='target patch size with --img-size (default: the checkpoint\'s)')
    parser.add_argument(
        '--interpolate-pos-embed',
        action='store_true',
        help='resize pos_embed bicubically to the target grid (MAE)')
    parser.add_argument(
        '--allow-missing',
        action='store_true',
        help='accept backbone keys the checkpoint lacks (beyond the final '
        'norms), e.g. fewer blocks')
    parser.add_argument('--force',
                        action='store_true',
                        help='overwrite an existing dst')
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='torch.load(weights_only=False): for trusted files holding '
        'other Python objects (e.g. argparse.Namespace) only')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if not osp.isfile(args.src):
            raise FileNotFoundError(f'checkpoint not found: {args.src}')
        if osp.exists(args.dst):
            if osp.samefile(args.src, args.dst):
                raise FileExistsError(
                    f'dst is the source checkpoint ({args.dst}): choose '
                    'another output path.')
            if not args.force:
                raise FileExistsError(f'destination exists: {args.dst} '
                                      '(pass --force to overwrite it).')
        ckpt = load_checkpoint_file(args.src,
                                    weights_only=not args.unsafe_load,
                                    unsafe_fix='pass --unsafe-load')
        backbone = (build_backbone_from_config(args.config)
                    if args.config else None)
        state, report = convert_checkpoint(
            ckpt,
            src_format=args.src_format,
            encoder=args.encoder,
            src_prefix=args.src_prefix,
            allow_unknown=args.allow_unknown,
            backbone=backbone,
            img_size=args.img_size,
            patch_size=args.patch_size,
            interpolate=args.interpolate_pos_embed,
            allow_missing=args.allow_missing)
        if args.config:
            report.target += f' built from {args.config}'
        meta = dict(source=osp.abspath(args.src),
                    src_format=report.src_format,
                    encoder=report.encoder,
                    src_prefix=args.src_prefix,
                    pos_embed=report.pos_embed)
        os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
        save_checkpoint(dict(state_dict=state, meta=meta),
                        args.dst,
                        overwrite=args.force)
    except (OSError, ValueError, KeyError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        sys.exit(f'error: {message}')
    report.dst = args.dst
    print(report)
    source = report.encoder or report.src_prefix or 'top-level'
    print(f'wrote {report.num_tensors} tensors of the {source} encoder '
          f'({report.src_format} format) to {args.dst}')
    return report


if __name__ == '__main__':
    main()
