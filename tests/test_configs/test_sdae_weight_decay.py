"""The SdAE configs decay what the released code decays: its parameter
groups come from MAE's ``add_weight_decay``, which skips 1-d parameters and
biases only, so ``cls_token`` and ``mask_token`` are decayed
(configs/sdae/README.md, "Weight decay")."""
import os.path as osp

from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpretrain.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'sdae',
                'sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py')


def released_rule(name, param):
    """MAE's util.misc.add_weight_decay: no decay iff 1-d or a bias."""
    return not (param.ndim == 1 or name.endswith('.bias'))


def test_weight_decay_follows_the_released_parameter_groups():
    cfg = Config.fromfile(DEMO)  # inherits the ViT-B recipe's groups
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay_of = {id(p): group['weight_decay']
                for group in wrapper.optimizer.param_groups
                for p in group['params']}
    trainable = [(n, p) for n, p in model.named_parameters()
                 if p.requires_grad]
    assert trainable and len(decay_of) == len(trainable)
    for name, param in trainable:
        expected = 0.05 if released_rule(name, param) else 0.0
        assert decay_of[id(param)] == expected, name
    names = [n for n, _ in trainable]
    assert 'backbone.cls_token' in names and 'neck.mask_token' in names
