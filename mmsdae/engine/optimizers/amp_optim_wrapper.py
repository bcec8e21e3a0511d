"""Mixed precision in bf16 without a loss scaler, on GPUs and on the CPU.

MMEngine 0.10.7's ``AmpOptimWrapper`` always scales the loss with a CUDA
``GradScaler`` (also for ``dtype='bfloat16'``, where it only costs a scale
and an unscale, and an inf/NaN check with a host sync, per step), asserts
a GPU, and its ``autocast`` accepts only bf16 on the CPU.
:class:`MixedPrecisionOptimWrapper` is that wrapper (same methods, same
checkpoint layout) with the dtype as its main argument and the scaler only
where fp16 needs it; ``tools/train.py --amp [--amp-dtype ...]`` selects it.
It is registered in MMEngine's root registry, so every scope (mmpretrain,
mmdet, mmseg) finds it.
"""
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn

AMP_DTYPES = ('bfloat16', 'float16')


def default_amp_dtype() -> str:
    """``'bfloat16'`` on the CPU and on GPUs with bf16 support
    (``torch.cuda.is_bf16_supported()``: Ampere and later), ``'float16'`` on
    older GPUs."""
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        return 'float16'
    return 'bfloat16'


@OPTIM_WRAPPERS.register_module()
class MixedPrecisionOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` for bf16 without a loss scaler, and on the CPU.

    Args:
        dtype (str): the autocast dtype of the training step,
            ``'bfloat16'`` (default) or ``'float16'``.
        loss_scale (str | float | dict | None): ``None``: no loss scaler;
            ``'dynamic'``, a float (static scale) or a dict of ``GradScaler``
            arguments as in ``AmpOptimWrapper``. Default ``'auto'``: none for
            bf16 (float32's exponent range, so gradients underflow no more
            than in float32), ``'dynamic'`` for fp16.
        **kwargs: as :class:`mmengine.optim.OptimWrapper`.

    Autocast runs on the device MMEngine trains on (``get_device()``); torch
    supports both dtypes on the CPU, so CPU runs (tests, demos) take the
    same path as GPU runs.
    """

    def __init__(self,
                 dtype: str = 'bfloat16',
                 loss_scale: Union[str, float, dict, None] = 'auto',
                 **kwargs) -> None:
        if dtype not in AMP_DTYPES:
            raise ValueError(f'{type(self).__name__}: dtype={dtype!r}; '
                             f'choose one of {AMP_DTYPES}.')
        device_type = get_device()
        if device_type == 'cuda' and dtype == 'bfloat16' \
                and not torch.cuda.is_bf16_supported():
            raise ValueError(
                f'{type(self).__name__}: this GPU has no bfloat16 support '
                f'({torch.cuda.get_device_name()}); use float16 '
                '(tools/train.py --amp --amp-dtype float16).')
        if loss_scale == 'auto':
            loss_scale = None if dtype == 'bfloat16' else 'dynamic'
        # AmpOptimWrapper.__init__ is skipped on purpose: it asserts a GPU
        # and builds a CUDA GradScaler even for bf16. Its methods only need
        # the three attributes set here.
        OptimWrapper.__init__(self, **kwargs)
        self.device_type = device_type
        self.cast_dtype = getattr(torch, dtype)
        self._scale_update_param = None
        if loss_scale is None:
            self.loss_scaler = None
        elif loss_scale == 'dynamic':
            self.loss_scaler = torch.amp.GradScaler(device_type)
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = torch.amp.GradScaler(
                device_type, init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler(device_type, **loss_scale)
        else:
            raise TypeError(
                f'{type(self).__name__}: loss_scale={loss_scale!r}; use None, '
                "'auto', 'dynamic', a float or a dict of GradScaler "
                'arguments.')

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is None:
            OptimWrapper.backward(self, loss, **kwargs)
        else:
            super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            OptimWrapper.step(self, **kwargs)
        else:
            super().step(**kwargs)

    def state_dict(self) -> dict:
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.loss_scaler is None:
            # a checkpoint of an fp16 run: its scale has no use here
            state_dict.pop('loss_scaler', None)
        super().load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Gradient-accumulation context of ``OptimWrapper`` + autocast in
        :attr:`cast_dtype` on :attr:`device_type`."""
        with OptimWrapper.optim_context(self, model), torch.autocast(
                self.device_type, dtype=self.cast_dtype):
            yield
