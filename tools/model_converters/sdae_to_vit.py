"""Export the SdAE encoder for downstream use.

Writes a checkpoint whose ``state_dict`` holds one encoder under the
``backbone.`` prefix, the layout mmpretrain / mmdet / mmseg ViT configs load
with ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
The student is exported by default (SdAE Sec. 4.4: "we ... use the student
model as the final model"); ``--encoder teacher`` exports the EMA teacher.

    python tools/model_converters/sdae_to_vit.py work_dirs/x/epoch_300.pth \
        sdae_vit-b_student.pth [--encoder teacher]
"""
import argparse
import os.path as osp
import sys

import torch

SOURCES = {'student': 'backbone.', 'teacher': 'teacher.'}


def extract_encoder(state_dict: dict, encoder: str = 'student') -> dict:
    """Keys of ``encoder`` renamed to ``backbone.*``; refuses a checkpoint
    that has none (e.g. not an SdAE pre-training checkpoint)."""
    if encoder not in SOURCES:
        raise ValueError(f'encoder={encoder!r}: choose one of '
                         f'{sorted(SOURCES)}.')
    prefix = SOURCES[encoder]
    out = {
        'backbone.' + k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not out:
        found = sorted({k.split('.')[0] for k in state_dict})
        raise KeyError(
            f'no "{prefix}*" keys in the checkpoint (top-level keys: '
            f'{found}): pass an SdAE pre-training checkpoint, e.g. '
            'work_dirs/<config>/epoch_300.pth.')
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('src', help='SdAE pre-training checkpoint')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument('--encoder', choices=sorted(SOURCES),
                        default='student')
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'checkpoint not found: {args.src}')
    import mmsdae  # noqa: F401  (allow-lists MMEngine's checkpoint types)
    ckpt = torch.load(args.src, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    out = extract_encoder(state, args.encoder)
    torch.save(dict(state_dict=out, meta=dict(
        source=osp.abspath(args.src), encoder=args.encoder)), args.dst)
    print(f'wrote {len(out)} tensors of the {args.encoder} encoder to '
          f'{args.dst}')


if __name__ == '__main__':
    main()
