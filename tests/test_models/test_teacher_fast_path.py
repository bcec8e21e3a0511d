"""The cheap teacher of the performance issue (part 2): inference mode,
bf16 autocast under AMP, folds batched as one forward pass, fused attention,
optional ``torch.compile`` of the encoder blocks -- each checked to give the
same loss / gradients as the plain path."""
import copy

import pytest
import torch
from mmpretrain.registry import MODELS

from conftest import TINY_MODEL

RCMAE_TINY = dict(
    type='RCMAE',
    backbone=dict(TINY_MODEL['backbone'], drop_path_rate=0.),
    neck=dict(TINY_MODEL['neck'], predict_feature_dim=None),
    head=dict(type='RCMAEHead', norm_pix=True, patch_size=8,
              loss=dict(type='PixelReconstructionLoss', criterion='L2')),
)


def _build(cfg=None, **overrides):
    cfg = copy.deepcopy(cfg or TINY_MODEL)
    cfg['backbone'] = dict(cfg['backbone'], drop_path_rate=0.)
    cfg.pop('data_preprocessor', None)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.train()


def _loss(model, inputs, seed=1):
    """The total loss as mmengine's ``parse_losses`` sums it."""
    torch.manual_seed(seed)
    losses = model.loss(inputs, None)
    return sum(v for k, v in losses.items() if 'loss' in k)


def _reference_sdae_loss(model, inputs, seed=1):
    """Eq. 3-4 with the teacher run the plain way (``no_grad``, float32),
    written out here without :meth:`run_teacher`."""
    torch.manual_seed(seed)
    latent, _, ids_restore = model.backbone(inputs)
    pred = model.neck(latent, ids_restore)
    masked_ids = ids_restore.argsort(1)[:, model.backbone.num_visible:]
    teacher_ids, target_mask = model.teacher_input.sample(
        masked_ids, model.backbone.num_patches)
    with torch.no_grad():
        feats = model.teacher.encode_patches(inputs, teacher_ids)
    batch, groups, length, dims = feats.shape
    target = torch.zeros(batch, model.backbone.num_patches, dims)
    target.scatter_(1,
                    teacher_ids.reshape(batch, -1, 1).expand(-1, -1, dims),
                    feats.reshape(batch, -1, dims))
    return model.head.loss(pred, target, target_mask)


def _record_teacher_blocks(model):
    """Forward hooks on the teacher's blocks: input shape and grad /
    inference mode of every call."""
    calls = []

    def hook(module, args, output):
        calls.append(dict(shape=tuple(args[0].shape),
                          inference=torch.is_inference_mode_enabled(),
                          grad=torch.is_grad_enabled()))

    handles = [block.register_forward_hook(hook)
               for block in model.teacher.layers]
    return calls, handles


def test_teacher_runs_in_inference_mode_and_keeps_nothing_for_backward():
    model = _build()
    inputs = torch.randn(4, 3, 32, 32)
    calls, handles = _record_teacher_blocks(model)
    ids = torch.stack([torch.randperm(16)[:12] for _ in range(4)])
    target = model.teacher_targets(inputs, ids.reshape(4, 3, 4))
    blocks = calls
    assert blocks and all(c['inference'] and not c['grad'] for c in blocks)
    # an ordinary tensor, usable by the loss's autograd, with no graph
    assert not target.is_inference()
    assert target.grad_fn is None and not target.requires_grad
    assert target.dtype == torch.float32
    for handle in handles:
        handle.remove()


def test_folds_are_one_batched_forward_pass():
    """B images x t folds -> each teacher block runs once on B * t short
    sequences of 1 + N_masked / t tokens (SdAE Sec. 2.2)."""
    model = _build()
    calls, _ = _record_teacher_blocks(model)
    _loss(model, torch.randn(4, 3, 32, 32))
    blocks = calls
    assert len(blocks) == len(model.teacher.layers)  # one call per block
    assert all(c['shape'] == (4 * 3, 1 + 4, 32) for c in blocks)


def test_plain_and_fast_teacher_give_identical_loss_and_gradients():
    model = _build()
    inputs = torch.randn(4, 3, 32, 32)
    loss = _loss(model, inputs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()
             if p.grad is not None}
    model.zero_grad()
    reference = _reference_sdae_loss(model, inputs)
    reference.backward()
    assert torch.equal(loss, reference)
    for name, param in model.named_parameters():
        if name in grads:
            assert torch.equal(grads[name], param.grad), name
    assert not any(n.startswith('teacher.') for n in grads)


def test_student_and_teacher_use_fused_attention(monkeypatch):
    """Every attention layer calls ``F.scaled_dot_product_attention``."""
    model = _build()
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    for name, module in model.named_modules():
        if hasattr(module, 'scaled_dot_product_attention'):
            def counted(*args, _name=name, **kwargs):
                seen.append(_name)
                return sdpa(*args, **kwargs)
            monkeypatch.setattr(module, 'scaled_dot_product_attention',
                                counted)
    _loss(model, torch.randn(2, 3, 32, 32))
    for prefix in ('backbone.layers', 'teacher.layers'):
        assert sum(s.startswith(prefix) for s in seen) == 2, seen


@pytest.mark.parametrize('outer, setting, expected', [
    (None, 'bfloat16', torch.float32),  # no AMP: float32 teacher
    (torch.bfloat16, 'bfloat16', torch.bfloat16),
    (torch.float16, 'bfloat16', torch.bfloat16),  # bf16 overrides fp16
    (torch.bfloat16, None, torch.bfloat16),  # None inherits the step's
    (torch.float16, None, torch.float16),
])
def test_teacher_autocast_dtype_follows_amp(outer, setting, expected):
    model = _build(teacher_amp_dtype=setting)
    dtypes = []
    model.teacher.layers[0].attn.qkv.register_forward_hook(
        lambda m, a, o: dtypes.append(o.dtype))
    inputs = torch.randn(2, 3, 32, 32)
    if outer is None:
        loss = _loss(model, inputs)
    else:
        with torch.autocast('cpu', dtype=outer):
            loss = _loss(model, inputs)
    assert dtypes == [expected]
    assert torch.isfinite(loss)


@pytest.mark.parametrize('outer', [torch.bfloat16, torch.float16])
def test_teacher_dtype_follows_the_run_by_default(outer):
    """Issue 16: without ``teacher_amp_dtype`` the teacher runs in the
    step's AMP dtype (``--amp-dtype``), fp16 included (the default used to
    be bf16 whatever the run)."""
    model = _build()
    assert model.teacher_amp_dtype is None
    dtypes = []
    model.teacher.layers[0].attn.qkv.register_forward_hook(
        lambda m, a, o: dtypes.append(o.dtype))
    with torch.autocast('cpu', dtype=outer):
        _loss(model, torch.randn(2, 3, 32, 32))
    assert dtypes == [outer]


def test_bf16_teacher_loss_matches_float32_within_bf16_precision():
    """Under AMP the targets come from a bf16 teacher; Eq. 3 / Eq. 4 run in
    float32 on them. The loss moves by bf16 rounding only (8 bits of
    mantissa: relative error ~ 2^-8 per operation)."""
    model = _build()
    inputs = torch.randn(4, 3, 32, 32)
    fp32 = _loss(model, inputs)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        amp = _loss(model, inputs)
    assert amp.dtype == torch.float32
    assert abs(float(amp) - float(fp32)) < 2e-2 * abs(float(fp32))
    assert float(amp) != float(fp32)  # autocast really was on


def test_rcmae_teacher_runs_in_inference_mode_and_float32_out():
    model = _build(RCMAE_TINY)
    inputs = torch.randn(2, 3, 32, 32)
    modes = []
    model.teacher_neck.register_forward_hook(
        lambda m, a, o: modes.append(torch.is_inference_mode_enabled()))
    _, _, ids_restore = model.backbone(inputs)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        pred, _ = model.teacher_reconstruction(inputs, ids_restore)
    assert modes == [True]
    assert pred.dtype == torch.float32 and not pred.is_inference()
    _loss(model, inputs).backward()
    assert all(p.grad is None for p in model.teacher_neck.parameters())


def test_bad_teacher_amp_dtype_and_compile_flag_are_refused():
    with pytest.raises(ValueError, match='teacher_amp_dtype'):
        _build(teacher_amp_dtype='fp8')
    with pytest.raises(TypeError, match='compile_blocks'):
        _build(compile_blocks='yes')


@pytest.mark.parametrize('cfg', [TINY_MODEL, RCMAE_TINY],
                         ids=['sdae', 'rcmae'])
def test_compiled_encoder_blocks_give_the_same_loss(cfg):
    """``compile_blocks`` (here with dynamo + AOT autograd, no code
    generation, to stay fast) keeps the parameter names and the loss."""
    plain = _build(cfg)
    compiled = _build(cfg, compile_blocks=dict(backend='aot_eager'))
    assert list(plain.state_dict()) == list(compiled.state_dict())
    inputs = torch.randn(4, 3, 32, 32)
    for seed in (1, 2):  # a second step reuses the compiled code
        expected = _loss(plain, inputs, seed)
        got = _loss(compiled, inputs, seed)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    got.backward()
    expected.backward()
    torch.testing.assert_close(compiled.backbone.layers[0].attn.qkv.weight.grad,
                               plain.backbone.layers[0].attn.qkv.weight.grad,
                               rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_inductor_compiled_encoder_gives_the_same_loss():
    """The real thing: inductor generates C++ kernels (needs a compiler;
    ~20 s on 2 cores)."""
    plain = _build()
    compiled = _build(compile_blocks=True)
    inputs = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(_loss(compiled, inputs), _loss(plain, inputs),
                               rtol=1e-4, atol=1e-5)


def test_forward_visible_is_maes_masked_forward():
    """``random_order`` + ``forward_visible`` draw the same random numbers as
    MAEViT's ``random_masking`` + masked forward (drop path included), so
    running the teacher first changes no result."""
    cfg = copy.deepcopy(TINY_MODEL)
    cfg['backbone']['drop_path_rate'] = 0.3
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    inputs = torch.randn(3, 3, 32, 32)
    torch.manual_seed(5)
    latent, mask, ids_restore = model.backbone(inputs)
    torch.manual_seed(5)
    order = model.backbone.random_order(3)
    latent2, ids_restore2 = model.backbone.forward_visible(inputs, order)
    assert torch.equal(ids_restore, ids_restore2)
    assert torch.equal(latent, latent2)
    assert torch.equal(mask.bool()[0], torch.zeros(16, dtype=torch.bool)
                       .scatter_(0, order[0, 4:], True))


def _peak_mb(model, inputs, teacher_first):
    """Peak live tensor memory of forward + backward, with the teacher run
    before (SdAE.loss) or after the student (written out here)."""
    from mmsdae.analysis.benchmark import LiveTensorPeak
    tracker = LiveTensorPeak()
    for tensor in [inputs, *model.parameters(), *model.buffers()]:
        tracker.track(tensor)
    with tracker:
        loss = _loss(model, inputs) if teacher_first else \
            _reference_sdae_loss(model, inputs)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return tracker.peak, float(loss)


def test_teacher_first_lowers_peak_memory():
    """The teacher's transient activations no longer sit on top of the
    student's saved ones: a lower peak for the same loss."""
    model = _build()
    inputs = torch.randn(64, 3, 32, 32)
    first, loss_first = _peak_mb(model, inputs, teacher_first=True)
    after, loss_after = _peak_mb(model, inputs, teacher_first=False)
    assert loss_first == loss_after
    assert first < after, (first, after)
