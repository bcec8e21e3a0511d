"""G2SD generic distillation (arXiv 2302.14771 Sec. 3, released code
pengzhiliang/G2SD): the target is LayerNorm (no affine, eps 1e-6) of the
teacher decoder's block-4 hidden state on the student's visible patches,
the student decoder's pre-norm hidden state goes through the MLP head, and
the loss is smooth L1 with beta 2 over all tokens (or the masked
patches)."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from tiny_teachers import build_g2sd, g2sd_cfg, tiny_mae  # noqa: F401

from mmsdae.models import G2SDHead, MAEFeatureDecoder
from mmsdae.models.necks import decoder_hidden_states


def smooth_l1(diff, beta):
    """Smooth L1, written out: 0.5 d^2 / beta below beta, |d| - beta / 2
    above; mean over every element."""
    a = diff.abs()
    return torch.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta).mean()


def hand_target(teacher, inputs, ids_shuffle, num_visible, block):
    """The G2SD target computed from the teacher's modules by hand: encode
    the visible patches, scatter them among mask tokens, run ``block``
    decoder blocks, LayerNorm without weight / bias."""
    enc, dec = teacher.backbone, teacher.neck
    batch, num = ids_shuffle.shape
    tokens = enc.patch_embed(inputs)[0] + enc.pos_embed[:, 1:]
    visible = ids_shuffle[:, :num_visible]
    seq = torch.stack([tokens[b, visible[b]] for b in range(batch)])
    cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(batch, -1, -1)
    h = torch.cat([cls, seq], dim=1)
    for layer in enc.layers:
        h = layer(h)
    h = dec.decoder_embed(enc.ln1(h))
    patches = dec.mask_token.expand(batch, num, -1).clone()
    for b in range(batch):
        patches[b, visible[b]] = h[b, 1:]
    z = torch.cat([h[:, :1], patches], dim=1) + dec.decoder_pos_embed
    for blk in list(dec.decoder_blocks)[:block]:
        z = blk(z)
    return F.layer_norm(z, (z.shape[-1], ), weight=None, bias=None,
                        eps=1e-6)


@pytest.mark.parametrize('block', [4, 1, 8])
def test_target_is_layernorm_of_the_teacher_decoder_block(build_g2sd,
                                                          block):
    model = build_g2sd(target_block=block)
    torch.manual_seed(3)
    inputs = torch.randn(2, 3, 32, 32)
    ids = model.backbone.random_order(2)
    target = model.teacher_targets(inputs, ids)
    assert target.shape == (2, 1 + 16, 16)  # class token + every patch
    with torch.no_grad():
        want = hand_target(model.teacher, inputs, ids,
                           model.backbone.num_visible, block)
    torch.testing.assert_close(target, want, rtol=1e-5, atol=1e-5)
    # per token: mean 0, variance 1 (no affine)
    torch.testing.assert_close(target.mean(-1), torch.zeros(2, 17),
                               atol=1e-5, rtol=0)


def test_smooth_l1_beta_2_on_constructed_differences():
    head = G2SDHead(in_channels=3, hidden_channels=5, out_channels=4)
    hidden = torch.randn(1, 2, 3)  # class token + one patch
    with torch.no_grad():
        pred = head(hidden)
    diff = torch.tensor([[[0.0, 1.0, 3.0, -5.0], [0.5, -1.5, 2.0, -2.5]]])
    loss = head.loss(hidden, pred - diff, torch.ones(1, 1))['loss']
    # 0.5 d^2 / 2 below 2, |d| - 1 above: 0 + 0.25 + 2 + 4 + 0.0625 +
    # 0.5625 + 1 + 1.5 = 9.375 over 8 elements
    assert float(loss) == pytest.approx(9.375 / 8)
    assert float(loss) == pytest.approx(float(smooth_l1(diff, 2.0)))


def test_masked_only_scores_the_masked_patches():
    head = G2SDHead(in_channels=3, hidden_channels=5, out_channels=4,
                    masked_only=True)
    torch.manual_seed(0)
    hidden = torch.randn(2, 1 + 4, 3)
    target = torch.randn(2, 1 + 4, 4)
    mask = torch.tensor([[1., 0., 1., 0.], [0., 0., 1., 1.]])
    loss = head.loss(hidden, target, mask)['loss']
    with torch.no_grad():
        pred = head(hidden)
    rows = [(0, 1), (0, 3), (1, 3), (1, 4)]  # (image, token) masked
    diff = torch.stack([pred[b, t] - target[b, t] for b, t in rows])
    assert float(loss) == pytest.approx(float(smooth_l1(diff, 2.0)))


def test_loss_is_the_head_formula_on_the_shared_mask(build_g2sd):
    """One step by hand: the mask drawn with MAE's random numbers, the
    teacher target on those visible patches, the student decoder's last
    pre-norm hidden state through fc1 -> GELU -> fc2, smooth L1 (beta 2)
    over all 1 + N tokens."""
    model = build_g2sd()
    inputs = torch.randn(2, 3, 32, 32)
    torch.manual_seed(7)
    loss = model.loss(inputs, [])['loss']

    torch.manual_seed(7)
    ids = torch.argsort(torch.rand(2, 16), dim=1)
    with torch.no_grad():
        target = hand_target(model.teacher, inputs, ids, 4, 4)
        latent, ids_restore = model.backbone.forward_visible(inputs, ids)
        assert latent.shape[1] == 1 + 4  # class token + visible patches
        hidden = decoder_hidden_states(model.neck, latent, ids_restore)
        head = model.head
        pred = head.fc2(F.gelu(head.fc1(hidden)))
    assert float(loss) == pytest.approx(float(smooth_l1(pred - target, 2.0)),
                                        rel=1e-5)


def test_student_decoder_is_the_mae_decoder_before_its_norm():
    """MAEFeatureDecoder = MAEPretrainDecoder's blocks without the norm and
    pixel projection: the MAE decoder's output is its hidden state through
    ln1 and decoder_pred."""
    torch.manual_seed(0)
    mae_decoder = MODELS.build(
        dict(type='MAEPretrainDecoder', num_patches=16, patch_size=8,
             embed_dim=16, decoder_embed_dim=12, decoder_depth=2,
             decoder_num_heads=2, mlp_ratio=2.))
    mae_decoder.init_weights()
    ours = MAEFeatureDecoder(num_patches=16, embed_dim=16,
                             decoder_embed_dim=12, decoder_depth=2,
                             decoder_num_heads=2, mlp_ratio=2.)
    missing, unexpected = ours.load_state_dict(mae_decoder.state_dict(),
                                               strict=False)
    assert not missing
    assert sorted(unexpected) == ['decoder_pred.bias', 'decoder_pred.weight',
                                  'ln1.bias', 'ln1.weight']
    latent = torch.randn(2, 1 + 4, 16)
    ids_restore = torch.argsort(torch.rand(2, 16), dim=1)
    with torch.no_grad():
        hidden = ours(latent, ids_restore)
        want = mae_decoder(latent, ids_restore)
        got = mae_decoder.decoder_pred(mae_decoder.ln1(hidden))[:, 1:]
    torch.testing.assert_close(got, want)
    assert not any(n.startswith(('ln1.', 'decoder_pred.'))
                   for n, _ in ours.named_parameters())


def test_student_learns_and_teacher_stays(build_g2sd):
    model = build_g2sd()
    teacher = {k: v.clone()
               for k, v in model.teacher.teacher_state_dict().items()}
    student = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2)
    inputs = torch.randn(4, 3, 32, 32)
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        model.loss(inputs, [])['loss'].backward()
        optimizer.step()
    for key, value in model.teacher.teacher_state_dict().items():
        assert torch.equal(value, teacher[key]), key
    assert any(not torch.equal(v, student[k])
               for k, v in model.backbone.state_dict().items())


def test_bf16_autocast_step_is_finite(build_g2sd):
    model = build_g2sd()
    inputs = torch.randn(2, 3, 32, 32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = model.loss(inputs, [])['loss']
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_configuration_errors(tiny_mae):  # noqa: F811
    _, path = tiny_mae
    with pytest.raises(ValueError, match='target_block=9: the teacher '
                       'decoder has 8 blocks'):
        MODELS.build(g2sd_cfg(path, target_block=9))
    cfg = g2sd_cfg(path)
    cfg['head']['out_channels'] = 32
    with pytest.raises(ValueError, match='head.out_channels=16'):
        MODELS.build(cfg)
    cfg = g2sd_cfg(path)
    cfg['head']['in_channels'] = 16
    with pytest.raises(ValueError, match='head.in_channels=12'):
        MODELS.build(cfg)
    cfg = g2sd_cfg(path)
    cfg['teacher']['backbone']['type'] = 'MAEViT'
    with pytest.raises(TypeError, match="type='SdAEViT'"):
        MODELS.build(cfg)
    cfg = g2sd_cfg(path)
    del cfg['teacher']['neck']
    with pytest.raises(ValueError, match='needs a backbone .* and a neck'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='smooth L1 needs beta > 0'):
        G2SDHead(beta=0)
