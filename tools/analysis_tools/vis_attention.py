"""Class-token attention of the last block, per head, for one or more
models (SdAE supplementary Fig. S-3: self-attention maps of two pre-trained
encoders side by side); with --query, the region holding 10 % of a query
patch's attention mass (RC-MAE Fig. 4).

For every image, each model gets three columns:

  image | heads: one colour per head | mean over heads

- the attention is the class token's row of the LAST block's attention
  probabilities (softmax over all tokens, class token included), over the
  patches, recomputed from the block's qkv projection
  (:mod:`mmsdae.analysis.attention`); the encoder runs on the whole image
  (no masking) in eval mode;
- "heads": head h shines in colour c_h (evenly spaced hues from red;
  legend at the bottom) with intensity m_h = (a_h - min a_h) /
  (max a_h - min a_h) (each head's map stretched to [0, 1] over the
  patches); the colours add up (sum_h m_h c_h, scaled so the brightest
  channel of the image is 1): with 3 heads, red / green / blue where one
  head attends, yellow / cyan / magenta where two overlap, white where all
  do, black where none does;
- "mean": the mean over heads of the raw probabilities, colour scale from 0
  to its maximum over the patches of that image.
  Maps are NOT renormalised over the patches (they sum to 1 - a[cls, cls]);
  the display rescales each map anyway.

Writes, under --out-dir:

  attention_maps.png   rows = images; columns as above, model A, then each
                       --compare model
  attention_maps.json  per image and model: per-head class-token attention
                       over the patches (H x h x w lists, raw
                       probabilities), its shape, the class token's
                       attention to itself per head, the head mean

With --query ROW COL (RC-MAE Fig. 4), instead:

  query_regions.png    rows = images, one column per model: the image,
                       dimmed outside the region, the query patch starred
  query_regions.json   per image and model: the query patch's attention
                       over the patches (--layer, mean over heads,
                       renormalised over the patches), the region (the
                       smallest set of patches holding --mass of it, 10 %
                       by default), its size and the mass it holds

Images: --images DIR (first --num-images files in sorted path order,
resized and centre-cropped to the model's image size) or, by default, the
embedded procedural images (mmsdae.datasets.ShapesGenerator, seed --seed).

    python tools/analysis_tools/vis_attention.py \\
        configs/sdae/sdae_vit-tiny-p8_1xb128-24e_shape-task-64px.py \\
        work_dirs/demo/epoch_24.pth \\
        --compare configs/rcmae/mae_vit-tiny-p8_1xb128-24e_shape-task-64px.py \\
        work_dirs/mae_demo/epoch_24.pth --query 3 4
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
import time

_START = time.perf_counter()
# Let the tool run from a checkout without installing mmsdae.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
import numpy as np  # noqa: E402

from mmsdae.analysis.attention import (attention_maps,  # noqa: E402
                                       cls_attention, mass_region,
                                       query_attention)
from mmsdae.analysis.checkpoints import (image_sources,  # noqa: E402
                                         load_encoder, load_images,
                                         model_label)
from mmsdae.analysis.cli import (add_image_arguments,  # noqa: E402
                                 per_model, run_cli, unique_labels)
from mmsdae.models.utils.vit import to_pair  # noqa: E402

DEFAULT_OUT_DIR = osp.join('work_dirs', 'vis_attention')
COLUMNS = ('image', 'heads (colour = head)', 'mean over heads')

# Figure layout, in inches (multiples of 1/4, so that inches x DPI is an
# exact number of pixels).
DPI = 100
CELL = 1.5  # one image / map
MODEL_GAP = 0.25  # between the columns of two models
HEADER = 0.5  # model label + column titles
LEGEND_ROW = 0.25  # one row of the head legend
LEGEND_PAD = 0.5  # legend title and margins
LEGEND_ITEM = 0.75  # width of one legend entry


def head_colours(num_heads: int) -> np.ndarray:
    """(H, 3) RGB colours in [0, 1]: fully saturated hues evenly spaced
    around the colour wheel from red (3 heads: red, green, blue), so that
    additive mixtures of two heads stay recognisable."""
    import colorsys
    return np.asarray([
        colorsys.hsv_to_rgb(h / num_heads, 1.0, 1.0) for h in range(num_heads)
    ])


def heads_to_rgb(maps: np.ndarray) -> np.ndarray:
    """(H, h, w) attention maps -> (h, w, 3) RGB image in [0, 1].

    Additive light per head: each head's map is stretched to [0, 1] over the
    patches, m_h = (a_h - min a_h) / (max a_h - min a_h), and shines in its
    colour c_h; the sum sum_h m_h c_h is divided by its largest channel value
    over the image. With 3 heads (red, green, blue) a patch is red / green /
    blue where one head attends, yellow / cyan / magenta where two do, white
    where all do and black where none does.
    """
    maps = np.asarray(maps, dtype=np.float64)
    flat = maps.reshape(len(maps), -1)
    low = flat.min(axis=1)[:, None, None]
    span = np.maximum(flat.max(axis=1) - flat.min(axis=1), 1e-12)
    stretched = (maps - low) / span[:, None, None]
    light = np.einsum('hyx,hc->yxc', stretched, head_colours(len(maps)))
    return np.clip(light / max(light.max(), 1e-12), 0.0, 1.0)


def legend_layout(num_models: int, num_heads: int):
    """``(columns, rows)`` of the head legend below the figure."""
    width = num_models * 3 * CELL + (num_models - 1) * MODEL_GAP
    columns = max(1, min(num_heads, int(width // LEGEND_ITEM)))
    return columns, math.ceil(num_heads / columns)


def figure_size(num_images: int, num_models: int, num_heads: int):
    """``(width, height)`` in inches of the figure; the PNG is
    ``width * DPI`` x ``height * DPI`` pixels."""
    _, legend_rows = legend_layout(num_models, num_heads)
    width = num_models * 3 * CELL + (num_models - 1) * MODEL_GAP
    height = HEADER + num_images * CELL + LEGEND_PAD + legend_rows * LEGEND_ROW
    return width, height


def plot_attention(models, path):
    """Draw the figure (rows = images, 3 columns per model) to ``path``.

    ``models``: dicts with ``label``, ``rgb`` (list of uint8 images) and
    ``cls`` ((B, H, h, w) numpy array of class-token attention).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    num_images = len(models[0]['rgb'])
    num_heads = max(m['cls'].shape[1] for m in models)
    width, height = figure_size(num_images, len(models), num_heads)
    fig = plt.figure(figsize=(width, height), dpi=DPI, facecolor='white')
    margin = 0.04
    for m, model in enumerate(models):
        left0 = m * (3 * CELL + MODEL_GAP)
        fig.text((left0 + 1.5 * CELL) / width, 1 - 0.15 / height,
                 model['label'], ha='center', va='center', fontsize=10,
                 fontweight='bold')
        for i in range(num_images):
            rgb = model['rgb'][i]
            maps = model['cls'][i]
            mean = maps.mean(axis=0)
            panels = (
                dict(X=rgb),
                dict(X=heads_to_rgb(maps), interpolation='nearest'),
                dict(X=mean, cmap='inferno', vmin=0.0, vmax=mean.max(),
                     interpolation='nearest'),
            )
            for c, panel in enumerate(panels):
                left = left0 + c * CELL + margin
                bottom = height - HEADER - (i + 1) * CELL + margin
                ax = fig.add_axes([
                    left / width, bottom / height,
                    (CELL - 2 * margin) / width, (CELL - 2 * margin) / height
                ])
                ax.imshow(**panel)
                ax.set_axis_off()
                if i == 0:
                    ax.set_title(COLUMNS[c], fontsize=8, pad=3)
    columns, rows = legend_layout(len(models), num_heads)
    colours = head_colours(num_heads)
    fig.legend(
        handles=[
            Patch(color=colours[h], label=f'head {h + 1}')
            for h in range(num_heads)
        ],
        loc='lower center',
        bbox_to_anchor=(0.5, 0.0),
        ncol=columns,
        fontsize=7,
        title='head colours (they add up where heads overlap)',
        title_fontsize=7,
        frameon=False,
        handlelength=1.2,
        columnspacing=1.0,
        borderaxespad=0.2)
    fig.savefig(path, dpi=DPI, facecolor='white')
    plt.close(fig)
    return width, height


def plot_regions(models, query, path):
    """RC-MAE Fig. 4: rows = images, one column per model; each cell is the
    image, dimmed outside the model's region, with a star on the query
    patch."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    num_images = len(models[0]['rgb'])
    width, height = len(models) * CELL, HEADER + num_images * CELL
    fig = plt.figure(figsize=(width, height), dpi=DPI, facecolor='white')
    margin = 0.04
    for m, model in enumerate(models):
        fig.text((m + 0.5) * CELL / width, 1 - 0.25 / height, model['label'],
                 ha='center', va='center', fontsize=8, fontweight='bold')
        for i in range(num_images):
            rgb = model['rgb'][i].astype(np.float64) / 255.0
            grid_h, grid_w = model['region'][i].shape
            scale_y, scale_x = (rgb.shape[0] // grid_h,
                                rgb.shape[1] // grid_w)
            rows = np.minimum(np.arange(rgb.shape[0]) // scale_y, grid_h - 1)
            cols = np.minimum(np.arange(rgb.shape[1]) // scale_x, grid_w - 1)
            inside = model['region'][i][np.ix_(rows, cols)].astype(float)
            shown = rgb * (0.2 + 0.8 * inside[..., None])
            ax = fig.add_axes([
                (m * CELL + margin) / width,
                (height - HEADER - (i + 1) * CELL + margin) / height,
                (CELL - 2 * margin) / width, (CELL - 2 * margin) / height
            ])
            ax.imshow(shown, interpolation='nearest')
            ax.plot((query[1] + 0.5) * scale_x - 0.5,
                    (query[0] + 0.5) * scale_y - 0.5, marker='*',
                    markersize=11, color='yellow', markeredgecolor='black')
            ax.set_axis_off()
    fig.savefig(path, dpi=DPI, facecolor='white')
    plt.close(fig)
    return width, height


def write_query_regions(models, args, sources):
    """query_regions.png / .json under ``args.out_dir``."""
    png = osp.join(args.out_dir, 'query_regions.png')
    json_path = osp.join(args.out_dir, 'query_regions.json')
    width, height = plot_regions(models, args.query, png)
    result = dict(
        figure=osp.basename(png),
        figure_size_in=[width, height],
        query=list(args.query),
        mass=args.mass,
        layer=args.layer,
        definition=(
            'query_attention[i, j]: attention probability of the query '
            'patch to the patch at row i, column j, in the block --layer, '
            'mean over heads, renormalised over the patches (class token '
            'left out). region: the smallest set of patches whose '
            'query_attention sums to at least --mass (the largest first). '
            'Whole image, no masking, eval mode.'),
        images=[
            dict(index=i, source=sources[i], models=[
                dict(label=m['label'],
                     query_attention=_rounded(m['query'][i]),
                     region=m['region'][i].astype(int).tolist(),
                     region_size=int(m['region'][i].sum()),
                     region_mass=round(float(
                         m['query'][i][m['region'][i]].sum()), 7))
                for m in models
            ]) for i in range(len(models[0]['rgb']))
        ])
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=1)
    return dict(png=png, json=json_path, result=result)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.split('\n')[2:]))
    parser.add_argument('config', help='config of model A')
    parser.add_argument('checkpoint', help='checkpoint of model A')
    parser.add_argument(
        '--compare', nargs=2, metavar=('CONFIG_B', 'CKPT_B'),
        action='append', help='another model, drawn to the right of model '
        'A (repeat for more)')
    parser.add_argument(
        '--query', nargs=2, type=int, metavar=('ROW', 'COL'),
        help='draw the attention region of this query patch instead '
        '(RC-MAE Fig. 4); row and column in the patch grid')
    parser.add_argument(
        '--mass', type=float, default=0.1,
        help='fraction of the query attention the region holds (default: '
        '%(default)s)')
    parser.add_argument(
        '--layer', type=int, default=-1,
        help='block of the query attention (default: the last, -1)')
    parser.add_argument(
        '--labels', nargs='+', help='names of the models in the figure '
        '(default: model type, encoder and checkpoint name)')
    add_image_arguments(parser, 4, 'images (rows)')
    parser.add_argument('--out-dir', default=DEFAULT_OUT_DIR,
                        help='output folder (default: %(default)s)')
    return parser.parse_args(argv)


def _rounded(array, digits=7):
    return np.round(np.asarray(array, dtype=np.float64), digits).tolist()


def main(argv=None):
    args = parse_args(argv)
    specs = [(args.config, args.checkpoint)]
    specs += [tuple(pair) for pair in args.compare or []]
    encoders = per_model(args.encoder, len(specs), 'encoder')
    labels = per_model(args.labels, len(specs), 'labels') \
        if args.labels else None
    sources = image_sources(args.images, args.num_images, args.seed)

    models = []
    for index, ((config, checkpoint), encoder_name) in enumerate(
            zip(specs, encoders)):
        encoder, info = load_encoder(config, checkpoint, encoder_name)
        size = args.img_size or info['img_size']
        rgb, batch = load_images(args.images, args.num_images, size,
                                 args.seed, info['normalization'])
        maps = attention_maps(encoder, batch)
        last = maps[-1]
        patch_h, patch_w = to_pair(info['patch_size'])
        grid = (batch.shape[-2] // patch_h, batch.shape[-1] // patch_w)
        extra = info['num_extra_tokens']
        models.append(
            dict(
                label=labels[index] if labels else model_label(info),
                info=info,
                rgb=rgb,
                grid=grid,
                cls=cls_attention(last, grid, extra).numpy(),
                cls_self=last[:, :, 0, :extra].sum(-1).numpy()))
        if args.query:
            if not -len(maps) <= args.layer < len(maps):
                raise ValueError(f'--layer {args.layer}: the encoder has '
                                 f'{len(maps)} blocks.')
            query = query_attention(maps[args.layer], args.query, grid,
                                    extra).mean(dim=1)
            models[-1].update(query=query.numpy(),
                              region=mass_region(query, args.mass).numpy())
    for model, label in zip(models,
                            unique_labels([m['label'] for m in models])):
        model['label'] = label

    os.makedirs(args.out_dir, exist_ok=True)
    if args.query:
        out = write_query_regions(models, args, sources)
        print(f'wrote {out["png"]} ({len(sources)} images x {len(models)} '
              f'models) and {out["json"]} in '
              f'{time.perf_counter() - _START:.1f} s')
        return out
    png = osp.join(args.out_dir, 'attention_maps.png')
    json_path = osp.join(args.out_dir, 'attention_maps.json')
    width, height = plot_attention(models, png)
    result = dict(
        figure=osp.basename(png),
        figure_size_in=[width, height],
        dpi=DPI,
        definition=(
            'cls_attention[h, i, j]: attention probability of the class '
            'token (query 0) of the LAST block, head h, to the patch at row '
            'i, column j (softmax over all tokens, class token included; '
            'not renormalised over the patches: the maps sum to 1 - '
            'cls_to_cls[h]). mean = mean over heads. Whole image, no '
            'masking, eval mode.'),
        head_colours=_rounded(
            head_colours(max(m['cls'].shape[1] for m in models)), 4),
        models=[
            dict(
                label=m['label'],
                layer=m['info']['num_layers'],
                img_size=list(m['rgb'][0].shape[:2]),
                grid=list(m['grid']),
                **{
                    k: m['info'][k]
                    for k in ('config', 'checkpoint', 'encoder', 'model_type',
                              'encoder_type', 'patch_size', 'num_heads',
                              'num_layers', 'normalization')
                }) for m in models
        ],
        images=[
            dict(
                index=i,
                source=sources[i],
                models=[
                    dict(
                        label=m['label'],
                        shape=list(m['cls'][i].shape),
                        cls_attention=_rounded(m['cls'][i]),
                        cls_to_cls=_rounded(m['cls_self'][i]),
                        mean=_rounded(m['cls'][i].mean(axis=0)))
                    for m in models
                ]) for i in range(len(models[0]['rgb']))
        ])
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=1)
    print(f'wrote {png} ({len(sources)} images x {len(models)} models) and '
          f'{json_path} in {time.perf_counter() - _START:.1f} s')
    return dict(png=png, json=json_path, result=result)


if __name__ == '__main__':
    run_cli(main)
