"""Attention capture, class-token maps, attention distance and the two
attention tools (vis_attention.py: SdAE supplementary Fig. S-3;
attention_distance.py: Hybrid Distill appendix Figs. A1-A4)."""
import itertools
import json
import math
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.models.utils import MultiheadAttention
from mmpretrain.registry import MODELS
from PIL import Image

from tool_loader import load_tool

from mmsdae.analysis.attention import (AttentionRecorder, attention_distance,
                                       attention_distances, attention_maps,
                                       attention_multiplier, attention_probs,
                                       cls_attention, mass_region,
                                       query_attention, run_encoder)
from mmsdae.analysis.checkpoints import (load_encoder, load_images,
                                         normalize_images)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(ROOT, 'configs', 'sdae',
                       'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py')
TOOLS = osp.join(ROOT, 'tools', 'analysis_tools')


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory):
    """The demo SdAE (96 wide, 4 blocks, 3 heads, 8 px patches on 64 px),
    initialised (not trained), with a teacher that differs from the
    student, saved as an MMEngine-style checkpoint."""
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(DEMO_CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        for param in model.teacher.parameters():
            param.add_(0.05 * torch.randn_like(param))
    path = tmp_path_factory.mktemp('ckpt') / 'sdae_demo_init.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path), model


# --------------------------------------------------------------------------
# Attention distance on constructed maps
# --------------------------------------------------------------------------
def with_cls(patch_attn, cls_mass=0.3):
    """(H, N, N) patch attention -> (H, 1 + N, 1 + N) rows summing to one,
    with ``cls_mass`` of every patch query on the class token (which the
    distance must ignore: rows are renormalised over patch keys)."""
    heads, n, _ = patch_attn.shape
    full = torch.zeros(heads, n + 1, n + 1, dtype=torch.float64)
    full[:, 0] = 1.0 / (n + 1)
    full[:, 1:, 0] = cls_mass
    full[:, 1:, 1:] = (1 - cls_mass) * patch_attn
    return full


@pytest.mark.parametrize('grid', [(4, 4), (3, 5)])
def test_identity_attention_has_distance_zero(grid):
    n = grid[0] * grid[1]
    attn = with_cls(torch.eye(n, dtype=torch.float64).expand(2, n, n))
    dist = attention_distance(attn, grid, patch_size=16)
    assert dist.shape == (2, )
    assert torch.equal(dist, torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize('side,patch', [(2, 16), (3, 8), (5, 14)])
def test_uniform_attention_is_mean_pairwise_cell_distance(side, patch):
    cells = list(itertools.product(range(side), range(side)))
    brute = sum(
        math.dist(a, b) for a, b in itertools.product(cells, cells)) / len(
            cells)**2 * patch
    n = side * side
    attn = with_cls(torch.full((3, n, n), 1.0 / n, dtype=torch.float64))
    dist = attention_distance(attn.unsqueeze(0).expand(2, -1, -1, -1),
                              (side, side), patch)
    torch.testing.assert_close(
        dist, torch.full((3, ), brute, dtype=torch.float64))


@pytest.mark.parametrize('patch', [8, 16])
def test_right_neighbour_attention_is_exactly_one_patch(patch):
    height, width = 4, 5
    n = height * width
    attn = torch.zeros(1, n, n, dtype=torch.float64)
    for row, col in itertools.product(range(height), range(width)):
        # the right neighbour; the last column looks left (also one patch)
        target = col + 1 if col + 1 < width else col - 1
        attn[0, row * width + col, row * width + target] = 1.0
    dist = attention_distance(with_cls(attn), (height, width), patch)
    assert dist.tolist() == [float(patch)]


def test_rectangular_patches_use_their_own_side():
    attn = torch.zeros(1, 4, 4, dtype=torch.float64)  # 2 x 2 grid
    attn[0, [0, 1, 2, 3], [2, 3, 0, 1]] = 1.0  # vertical neighbour
    assert attention_distance(with_cls(attn), (2, 2),
                              (16, 8)).tolist() == [16.0]


def test_attention_distance_refuses_a_wrong_grid():
    with pytest.raises(ValueError, match='does not match'):
        attention_distance(torch.rand(2, 17, 17), (4, 5), 16)


# --------------------------------------------------------------------------
# Capturing attention from mmpretrain ViTs
# --------------------------------------------------------------------------
def explicit_output(attn, x, probs):
    """The module's output recomputed from the probabilities: P @ v, heads
    merged, through attn.proj (no dropout / layer scale in eval)."""
    batch, tokens, _ = x.shape
    qkv = attn.qkv(x).reshape(batch, tokens, 3, attn.num_heads,
                              attn.head_dims).permute(2, 0, 3, 1, 4)
    out = (probs @ qkv[2]).transpose(1, 2).reshape(batch, tokens,
                                                   attn.embed_dims)
    return attn.gamma1(attn.proj(out))


def record_io(encoder):
    inputs, outputs = {}, {}
    handles = []
    for i, layer in enumerate(encoder.layers):

        def hook(module, args, output, i=i):
            inputs[i], outputs[i] = args[0], output

        handles.append(layer.attn.register_forward_hook(hook))
    return inputs, outputs, handles


TINY_ARCH = dict(
    embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64)


@pytest.mark.parametrize('backbone', [
    dict(type='SdAEViT', mask_ratio=0.75),
    dict(type='MAEViT', mask_ratio=0.75),
    dict(type='VisionTransformer', out_type='cls_token'),
    dict(type='VisionTransformer', qkv_bias=False),
])
def test_captured_attention_reproduces_the_module_output(backbone):
    torch.manual_seed(0)
    encoder = MODELS.build(
        dict(arch=TINY_ARCH, img_size=32, patch_size=8, **backbone))
    encoder.init_weights()
    encoder.eval()
    images = torch.randn(3, 3, 32, 32)
    inputs, outputs, handles = record_io(encoder)
    maps = attention_maps(encoder, images)
    for handle in handles:
        handle.remove()
    assert len(maps) == 2
    for i, probs in enumerate(maps):
        # whole image (no masking): class token + 16 patches
        assert probs.shape == (3, 4, 17, 17)
        torch.testing.assert_close(probs.sum(-1), torch.ones(3, 4, 17))
        assert (probs >= 0).all()
        torch.testing.assert_close(
            explicit_output(encoder.layers[i].attn, inputs[i], probs),
            outputs[i], rtol=1e-5, atol=1e-6)


def test_mmpretrain_qk_scale_quirk_is_reproduced():
    """With qk_scale set, mmpretrain's pyimpl divides by head_dims ** -0.5
    (whatever qk_scale is): the recomputed probabilities must follow the
    module, not the documentation."""
    torch.manual_seed(0)
    attn = MultiheadAttention(embed_dims=16, num_heads=2, qk_scale=0.1)
    attn.eval()
    assert attention_multiplier(attn) == pytest.approx(8**0.5)
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        probs = attention_probs(attn, x)
        torch.testing.assert_close(
            explicit_output(attn, x, probs), attn(x), rtol=1e-5, atol=1e-6)


def test_recorder_removes_its_hooks(demo_checkpoint):
    _, model = demo_checkpoint
    encoder = model.backbone
    encoder.eval()  # mmpretrain ViT.train() returns None
    with AttentionRecorder(encoder):
        assert all(len(l.attn._forward_pre_hooks) == 1
                   for l in encoder.layers)
    assert all(not l.attn._forward_pre_hooks for l in encoder.layers)
    # MAEViT-style encoders only skip masking with mask=None
    out = run_encoder(encoder, torch.randn(1, 3, 64, 64))
    assert out[0].shape == (1, 65, 96)  # class token + all 64 patches


def test_class_token_maps_sum_to_one(demo_checkpoint):
    _, model = demo_checkpoint
    encoder = model.backbone
    encoder.eval()  # mmpretrain ViT.train() returns None
    last = attention_maps(encoder, torch.randn(2, 3, 64, 64))[-1]
    maps = cls_attention(last, (8, 8))
    assert maps.shape == (2, 3, 8, 8)
    # raw maps: patches + the class token's attention to itself = 1
    torch.testing.assert_close(
        maps.sum(dim=(-2, -1)) + last[:, :, 0, 0], torch.ones(2, 3))
    renormalised = cls_attention(last, renormalize=True)
    torch.testing.assert_close(
        renormalised.sum(dim=(-2, -1)), torch.ones(2, 3))
    torch.testing.assert_close(
        cls_attention(last[0], (8, 8)), maps[0])  # (H, T, T) input
    assert attention_distances(
        attention_maps(encoder, torch.randn(1, 3, 64, 64)), (8, 8),
        8).shape == (4, 3)


# --------------------------------------------------------------------------
# Loading encoders and images
# --------------------------------------------------------------------------
@pytest.mark.parametrize('encoder', ['auto', 'student', 'teacher'])
def test_load_encoder_picks_the_weights_of_the_checkpoint(
        demo_checkpoint, encoder):
    path, model = demo_checkpoint
    module, info = load_encoder(DEMO_CONFIG, path, encoder)
    source = model.teacher if encoder == 'teacher' else model.backbone
    assert not module.training
    for name, value in source.state_dict().items():
        torch.testing.assert_close(module.state_dict()[name], value)
    assert info['encoder'] == ('teacher'
                               if encoder == 'teacher' else 'student')
    assert (info['patch_size'], info['img_size'], info['num_heads'],
            info['num_layers'], info['grid']) == (8, 64, 3, 4, [8, 8])
    assert info['normalization']['to_rgb'] is True


def test_missing_files_name_the_path(demo_checkpoint, tmp_path):
    missing = str(tmp_path / 'nowhere' / 'epoch_10.pth')
    with pytest.raises(FileNotFoundError, match='nowhere/epoch_10.pth'):
        load_encoder(DEMO_CONFIG, missing)
    with pytest.raises(FileNotFoundError, match='no_config.py'):
        load_encoder(str(tmp_path / 'no_config.py'), demo_checkpoint[0])
    with pytest.raises(FileNotFoundError, match='no_images'):
        load_images(str(tmp_path / 'no_images'), img_size=64)


def test_checkpoint_without_the_encoder_is_refused(demo_checkpoint,
                                                   tmp_path):
    _, model = demo_checkpoint
    state = model.state_dict()
    # no weights of the encoder at all: never visualise a random model
    neck_only = tmp_path / 'neck_only.pth'
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if k.startswith('neck.')}}, neck_only)
    with pytest.raises(KeyError, match='lacks .* student'):
        load_encoder(DEMO_CONFIG, str(neck_only))
    # an exported student has no teacher
    student_only = tmp_path / 'student_only.pth'
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if k.startswith('backbone.')}}, student_only)
    load_encoder(DEMO_CONFIG, str(student_only), 'student')
    with pytest.raises(KeyError, match='--encoder student'):
        load_encoder(DEMO_CONFIG, str(student_only), 'teacher')


def test_load_images_from_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name, size in (('b.png', (40, 60)), ('a.jpg', (80, 50)),
                       ('notes.txt', None)):
        if size is None:
            (tmp_path / name).write_text('not an image')
            continue
        Image.fromarray(rng.integers(0, 255, size + (3, ),
                                     dtype=np.uint8)).save(tmp_path / name)
    rgb, batch = load_images(str(tmp_path), num_images=5, img_size=32)
    assert [img.shape for img in rgb] == [(32, 32, 3)] * 2
    assert batch.shape == (2, 3, 32, 32)


def test_procedural_images_and_normalisation():
    rgb, batch = load_images(None, num_images=3, img_size=64)
    assert len(rgb) == 3 and rgb[0].dtype == np.uint8
    mean, std = [10.0, 20.0, 30.0], [2.0, 4.0, 5.0]
    as_rgb = normalize_images(rgb, dict(mean=mean, std=std, to_rgb=True))
    expected = (torch.from_numpy(rgb[1]).float() -
                torch.tensor(mean)) / torch.tensor(std)
    torch.testing.assert_close(as_rgb[1], expected.permute(2, 0, 1))
    # without channel conversion the model sees BGR (as cv2 loads it)
    as_bgr = normalize_images(rgb, dict(mean=mean, std=std, to_rgb=False))
    bgr = torch.from_numpy(rgb[1][..., ::-1].copy()).float()
    torch.testing.assert_close(
        as_bgr[1], ((bgr - torch.tensor(mean)) /
                    torch.tensor(std)).permute(2, 0, 1))
    torch.testing.assert_close(batch, normalize_images(rgb))


# --------------------------------------------------------------------------
# The region of 10 % attention mass (RC-MAE Fig. 4) on a constructed map
# --------------------------------------------------------------------------
def query_row_map():
    """(2, 1 + 64, 1 + 64) attention, 8 x 8 grid, query patch (2, 3).

    Head 0, query row: 0.3 on the class token; over the patches (x 0.7):
    0.055 on the query itself, 0.030 on its right neighbour (2, 4), 0.025
    below it (3, 3), the other 61 patches 0.89 / 61 = 0.01459 each. Head 1:
    uniform over every token. Other rows: uniform."""
    n = 64
    attn = torch.full((2, n + 1, n + 1), 1.0 / (n + 1), dtype=torch.float64)
    query = 1 + 2 * 8 + 3
    patches = torch.full((n, ), 0.89 / 61, dtype=torch.float64)
    patches[2 * 8 + 3], patches[2 * 8 + 4], patches[3 * 8 + 3] = \
        0.055, 0.030, 0.025
    attn[0, query, 0] = 0.3
    attn[0, query, 1:] = 0.7 * patches
    return attn


def test_query_attention_is_the_query_row_renormalised_over_patches():
    maps = query_row_map()
    row = query_attention(maps, (2, 3))
    assert row.shape == (2, 8, 8)
    torch.testing.assert_close(row.sum(dim=(1, 2)),
                               torch.ones(2, dtype=torch.float64))
    assert row[0, 2, 3].item() == pytest.approx(0.055)
    assert row[0, 2, 4].item() == pytest.approx(0.030)
    assert row[1, 5, 5].item() == pytest.approx(1 / 64)
    with pytest.raises(ValueError, match='outside the 8x8'):
        query_attention(maps, (8, 0))


@pytest.mark.parametrize('mass, patches', [
    # hand computation: 0.055 < 0.10, 0.055 + 0.030 = 0.085 < 0.10,
    # + 0.025 = 0.110 >= 0.10: the query, its right neighbour, the one below
    (0.10, {(2, 3), (2, 4), (3, 3)}),
    (0.05, {(2, 3)}),  # the query alone holds 0.055
    (0.09, {(2, 3), (2, 4), (3, 3)}),
])
def test_mass_region_is_the_smallest_set_holding_the_mass(mass, patches):
    region = mass_region(query_attention(query_row_map(), (2, 3))[0], mass)
    assert region.dtype == torch.bool
    assert {tuple(p) for p in region.nonzero().tolist()} == patches


def test_mass_region_of_uniform_attention_and_of_the_raw_row():
    row = query_attention(query_row_map(), (2, 3))
    # uniform over 64 patches: ceil(0.1 * 64) = 7 patches hold 10 %
    assert int(mass_region(row[1], 0.1).sum()) == 7
    assert bool(mass_region(row, 1.0).all())
    # the class token is no key of the region: left among the keys, its 0.3
    # alone would hold the 10 % and no patch would be in the region
    full_row = query_row_map()[0, 1 + 2 * 8 + 3].reshape(1, 65)
    assert mass_region(full_row, 0.1).nonzero().tolist() == [[0, 0]]
    with pytest.raises(ValueError, match='mass=0'):
        mass_region(row, 0.0)


# --------------------------------------------------------------------------
# The CLI tools
# --------------------------------------------------------------------------
def test_vis_attention_writes_png_and_json(demo_checkpoint, tmp_path):
    tool = load_tool('analysis_tools/vis_attention.py')
    path, _ = demo_checkpoint
    out = tool.main([
        DEMO_CONFIG, path, '--compare', DEMO_CONFIG, path, '--encoder',
        'student', 'teacher', '--num-images', '3', '--out-dir',
        str(tmp_path)
    ])
    width, height = tool.figure_size(num_images=3, num_models=2, num_heads=3)
    with Image.open(out['png']) as image:
        assert image.size == (round(width * tool.DPI),
                              round(height * tool.DPI))
    with open(out['json']) as f:
        result = json.load(f)
    assert [m['encoder'] for m in result['models']] == ['student', 'teacher']
    assert len(result['images']) == 3
    for image in result['images']:
        assert len(image['models']) == 2
        for model in image['models']:
            maps = np.asarray(model['cls_attention'])
            assert model['shape'] == [3, 8, 8] == list(maps.shape)
            np.testing.assert_allclose(
                maps.sum(axis=(1, 2)) + model['cls_to_cls'], 1.0, atol=1e-5)
    student, teacher = (np.asarray(m['cls_attention'])
                        for m in result['images'][0]['models'])
    assert not np.allclose(student, teacher)


def test_vis_attention_query_regions_of_several_checkpoints(
        demo_checkpoint, tmp_path):
    tool = load_tool('analysis_tools/vis_attention.py')
    path, _ = demo_checkpoint
    out = tool.main([
        DEMO_CONFIG, path, '--compare', DEMO_CONFIG, path, '--compare',
        DEMO_CONFIG, path, '--encoder', 'student', 'teacher', 'student',
        '--labels', 'A', 'B', 'C', '--num-images', '2', '--query', '3', '4',
        '--out-dir', str(tmp_path)
    ])
    assert osp.basename(out['png']) == 'query_regions.png'
    assert not (tmp_path / 'attention_maps.png').exists()
    with Image.open(out['png']) as image:
        assert image.size == (3 * round(tool.CELL * tool.DPI),
                              round((tool.HEADER + 2 * tool.CELL) * tool.DPI))
    with open(out['json']) as f:
        result = json.load(f)
    assert result['query'] == [3, 4] and result['mass'] == 0.1
    assert len(result['images']) == 2
    for image in result['images']:
        assert [m['label'] for m in image['models']] == ['A', 'B', 'C']
        for model in image['models']:
            attn = np.asarray(model['query_attention'])
            region = np.asarray(model['region'], dtype=bool)
            assert attn.shape == region.shape == (8, 8)
            assert attn.sum() == pytest.approx(1.0, abs=1e-5)
            # the region holds 10 %, and drops below without its smallest
            assert model['region_size'] == region.sum()
            assert model['region_mass'] == pytest.approx(attn[region].sum(),
                                                         abs=1e-6)
            assert attn[region].sum() >= 0.1 - 1e-6
            assert attn[region].sum() - attn[region].min() < 0.1
            assert attn[region].min() >= attn[~region].max() - 1e-7
    student, teacher = (np.asarray(m['query_attention'])
                        for m in result['images'][0]['models'][:2])
    assert not np.allclose(student, teacher)


def test_heads_to_rgb_colours():
    tool = load_tool('analysis_tools/vis_attention.py')
    maps = np.zeros((3, 2, 2))
    maps[0, 0, 0] = maps[1, 0, 1] = 1.0  # head 1 and head 2 alone
    maps[:, 1, 0] = 1.0  # all heads
    rgb = tool.heads_to_rgb(maps)
    colours = tool.head_colours(3)
    np.testing.assert_allclose(rgb[0, 0], colours[0])
    np.testing.assert_allclose(rgb[0, 1], colours[1])
    np.testing.assert_allclose(rgb[1, 0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(rgb[1, 1], [0.0, 0.0, 0.0])


def test_attention_distance_cli_writes_png_and_json(demo_checkpoint,
                                                    tmp_path):
    tool = load_tool('analysis_tools/attention_distance.py')
    path, _ = demo_checkpoint
    out = tool.main([
        DEMO_CONFIG, path, DEMO_CONFIG, path, '--encoder', 'student',
        'teacher', '--labels', 'student', 'teacher', '--num-images', '5',
        '--batch-size', '2', '--out-dir',
        str(tmp_path)
    ])
    with Image.open(out['png']) as image:
        assert image.size == (round(tool.FIGURE_SIZE[0] * tool.DPI),
                              round(tool.FIGURE_SIZE[1] * tool.DPI))
    with open(out['json']) as f:
        result = json.load(f)
    assert [c['label'] for c in result['checkpoints']] == [
        'student', 'teacher'
    ]
    for entry in result['checkpoints']:
        dist = np.asarray(entry['distance'])
        assert dist.shape == (4, 3)  # layers x heads
        assert (dist > 0).all() and (dist < 64 * math.sqrt(2)).all()
        np.testing.assert_allclose(entry['layer_mean'], dist.mean(1),
                                   atol=1e-3)
    # chunked averaging = one pass over all images
    encoder, info = load_encoder(DEMO_CONFIG, path, 'student')
    _, batch = load_images(None, 5, 64)
    whole = attention_distances(attention_maps(encoder, batch), (8, 8), 8)
    np.testing.assert_allclose(result['checkpoints'][0]['distance'],
                               whole.numpy(), atol=1e-3)


def test_attention_distance_needs_config_checkpoint_pairs(tmp_path):
    tool = load_tool('analysis_tools/attention_distance.py')
    with pytest.raises(SystemExit):
        tool.parse_args([DEMO_CONFIG])


@pytest.mark.slow
@pytest.mark.parametrize('name', ['vis_attention', 'attention_distance'])
def test_cli_reports_a_missing_checkpoint(tmp_path, name):
    missing = str(tmp_path / 'missing.pth')
    result = subprocess.run(
        [sys.executable, osp.join(TOOLS, name + '.py'), DEMO_CONFIG, missing,
         '--out-dir', str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert missing in result.stderr
    assert 'Traceback' not in result.stderr
