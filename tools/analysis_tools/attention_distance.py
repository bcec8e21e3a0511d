"""Average attention distance per layer and head, for one or more
checkpoints on one figure (Hybrid Distill appendix Figs. A1-A4).

Definition (mmsdae.analysis.attention.attention_distance): for layer l and
head h, with P the attention probabilities of that block (recomputed from
its qkv projection; whole image, no masking, eval mode),

  D[l, h] = mean over images and over query patches q of
            sum over key patches k of P~[q, k] * d(q, k)  (pixels)

- only patch tokens count: the class token is excluded as a query and as a
  key, and each query row is renormalised over the patch keys,
  P~[q, k] = P[q, k] / sum_k' P[q, k'] (so the definition is exact on
  constructed maps: attention to itself gives 0, one-hot attention to a
  horizontal neighbour gives exactly one patch size);
- d(q, k) = Euclidean distance between the patch centres = grid distance x
  patch size (pixels of the network input);
- the dotted line is the distance of uniform attention over the grid (the
  mean distance between two grid cells, self pairs included).

Writes, under --out-dir:

  attention_distance.png   x = layer (1..L), y = distance (px), one point
                           per head, one colour / marker per checkpoint,
                           its per-layer mean over heads as a thin line;
                           the y axis is zoomed on the data (it need not
                           start at 0)
  attention_distance.json  per checkpoint: the L x H matrix ("distance",
                           rows = layers, columns = heads) and the
                           per-layer mean

    python tools/analysis_tools/attention_distance.py \\
        configs/sdae/sdae_vit-tiny-p8_1xb128-24e_shape-task-64px.py \\
        work_dirs/demo/epoch_24.pth \\
        configs/rcmae/mae_vit-tiny-p8_1xb128-24e_shape-task-64px.py \\
        work_dirs/mae_demo/epoch_24.pth --labels SdAE MAE
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

_START = time.perf_counter()
# Let the tool run from a checkout without installing mmsdae.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmsdae.analysis.attention import (attention_distances,  # noqa: E402
                                       attention_maps, patch_distances)
from mmsdae.analysis.checkpoints import (image_sources,  # noqa: E402
                                         load_encoder, load_images,
                                         model_label)
from mmsdae.analysis.cli import (add_image_arguments,  # noqa: E402
                                 per_model, run_cli, unique_labels)
from mmsdae.models.utils.vit import to_pair  # noqa: E402

DEFAULT_OUT_DIR = osp.join('work_dirs', 'attention_distance')
MARKERS = ('o', 's', '^', 'D', 'v', 'P', 'X', '*')
FIGURE_SIZE = (6.5, 4.0)  # inches
DPI = 150


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.split('\n')[2:]))
    parser.add_argument(
        'models', nargs='+', metavar='CONFIG CKPT',
        help='config and checkpoint pairs: CONFIG CKPT [CONFIG CKPT ...]')
    parser.add_argument(
        '--labels', nargs='+', help='one legend label per checkpoint '
        '(default: model type, encoder and checkpoint name)')
    add_image_arguments(parser, 16, 'images to average over')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='images per forward pass (default: 8)')
    parser.add_argument('--out-dir', default=DEFAULT_OUT_DIR,
                        help='output folder (default: %(default)s)')
    args = parser.parse_args(argv)
    if len(args.models) % 2:
        parser.error(f'got {len(args.models)} positional arguments: give '
                     'CONFIG CKPT pairs (an even number).')
    args.pairs = list(zip(args.models[0::2], args.models[1::2]))
    return args


def model_distances(encoder, info, batch, batch_size=8):
    """(L, H) average attention distance over the images of ``batch``,
    computed ``batch_size`` images at a time; and the (h, w) grid."""
    patch = to_pair(info['patch_size'])
    grid = (batch.shape[-2] // patch[0], batch.shape[-1] // patch[1])
    total = None
    for start in range(0, len(batch), batch_size):
        chunk = batch[start:start + batch_size]
        maps = attention_maps(encoder, chunk)
        dist = attention_distances(maps, grid, patch,
                                   info['num_extra_tokens']) * len(chunk)
        total = dist if total is None else total + dist
    return total / len(batch), grid


def uniform_distance(grid, patch_size) -> float:
    """Distance of uniform attention: mean pixel distance between two patch
    centres of the grid (self pairs included)."""
    return float(patch_distances(grid, patch_size).mean())


def plot_distances(entries, path, title):
    """x = layer, y = distance, one point per head, one colour / marker per
    checkpoint (slightly offset in x so that they do not hide each other);
    thin line = mean over heads; dotted = uniform attention."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    colours = matplotlib.colormaps['tab10'].colors
    fig, ax = plt.subplots(figsize=FIGURE_SIZE, dpi=DPI)
    count = len(entries)
    width = min(0.5, 0.15 * count)
    max_layers = 1
    for i, entry in enumerate(entries):
        dist = np.asarray(entry['distance'])
        layers, heads = dist.shape
        max_layers = max(max_layers, layers)
        offset = (i - (count - 1) / 2) * (width / max(count - 1, 1)) \
            if count > 1 else 0.0
        x = np.arange(1, layers + 1) + offset
        colour = colours[i % len(colours)]
        ax.scatter(
            np.repeat(x, heads), dist.flatten(), s=22, color=colour,
            marker=MARKERS[i % len(MARKERS)], alpha=0.8, linewidths=0,
            label=f"{entry['label']} ({heads} heads)")
        ax.plot(x, dist.mean(axis=1), color=colour, linewidth=0.8,
                alpha=0.6)
    references = sorted({(e['uniform_distance'], e['grid_str'])
                         for e in entries})
    for value, grid in references:
        ax.axhline(value, color='grey', linestyle=':', linewidth=1.0,
                   label=f'uniform attention ({grid})')
    ax.set_xticks(range(1, max_layers + 1))
    ax.set_xlim(0.5, max_layers + 0.5)
    ax.margins(y=0.15)
    ax.set_xlabel('layer')
    ax.set_ylabel('average attention distance (pixels)')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc='best')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    encoders = per_model(args.encoder, len(args.pairs), 'encoder')
    labels = per_model(args.labels, len(args.pairs), 'labels') \
        if args.labels else None
    sources = image_sources(args.images, args.num_images, args.seed)

    entries = []
    for index, ((config, checkpoint), encoder_name) in enumerate(
            zip(args.pairs, encoders)):
        encoder, info = load_encoder(config, checkpoint, encoder_name)
        size = args.img_size or info['img_size']
        _, batch = load_images(args.images, args.num_images, size, args.seed,
                               info['normalization'])
        with torch.no_grad():
            dist, grid = model_distances(encoder, info, batch,
                                         args.batch_size)
        patch = to_pair(info['patch_size'])
        entries.append(
            dict(
                label=labels[index] if labels else model_label(info),
                config=info['config'],
                checkpoint=info['checkpoint'],
                encoder=info['encoder'],
                model_type=info['model_type'],
                encoder_type=info['encoder_type'],
                patch_size=info['patch_size'],
                img_size=list(batch.shape[-2:]),
                grid=list(grid),
                grid_str=f'{grid[0]}x{grid[1]} patches of '
                f'{patch[0]}x{patch[1]} px',
                num_layers=int(dist.shape[0]),
                num_heads=int(dist.shape[1]),
                distance=np.round(dist.numpy(), 4).tolist(),
                layer_mean=np.round(dist.mean(dim=1).numpy(), 4).tolist(),
                uniform_distance=round(uniform_distance(grid, patch), 4)))
    for entry, label in zip(entries,
                            unique_labels([e['label'] for e in entries])):
        entry['label'] = label

    os.makedirs(args.out_dir, exist_ok=True)
    png = osp.join(args.out_dir, 'attention_distance.png')
    json_path = osp.join(args.out_dir, 'attention_distance.json')
    title = (f'Average attention distance, {len(sources)} images '
             f"({'procedural' if args.images is None else args.images})")
    plot_distances(entries, png, title)
    result = dict(
        figure=osp.basename(png),
        definition=(
            'distance[l][h] = mean over images and query patches q of '
            'sum_k P~[q, k] * d(q, k), pixels; P = attention probabilities '
            'of layer l+1, head h+1 (whole image, no masking, eval mode); '
            'class token excluded as query and key; P~ = each query row '
            'renormalised over the patch keys; d = Euclidean distance '
            'between patch centres (grid distance x patch size). '
            'uniform_distance = value for uniform attention.'),
        images=sources,
        checkpoints=[{k: v
                      for k, v in e.items() if k != 'grid_str'}
                     for e in entries])
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=1)
    print(f'wrote {png} ({len(entries)} checkpoints, {len(sources)} '
          f'images) and {json_path} in {time.perf_counter() - _START:.1f} s')
    return dict(png=png, json=json_path, result=result)



if __name__ == '__main__':
    run_cli(main)
