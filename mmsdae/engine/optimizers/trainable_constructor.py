"""An optimizer constructor that leaves frozen parameters out."""
from mmengine.optim import DefaultOptimWrapperConstructor
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` without ``requires_grad=False``
    parameters.

    MMEngine's default constructor puts frozen parameters into the optimizer
    too (they then only sit there without gradients). SdAE's EMA teacher must
    never be touched by the optimizer, weight decay included, so its
    parameters are left out entirely. ``paramwise_cfg`` works as usual;
    without one, every parameter still goes through :meth:`add_params` (the
    default constructor would pass ``model.parameters()`` as they are).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        super().__init__(optim_wrapper_cfg, paramwise_cfg or dict(
            custom_keys=dict()))

    def add_params(self, params, module, prefix='', is_dcn_module=None):
        groups = []
        super().add_params(groups, module, prefix, is_dcn_module)
        params.extend(g for g in groups
                      if all(p.requires_grad for p in g['params']))
