# Copyright (c) OpenMMLab. All rights reserved.
"""Make MMEngine checkpoints loadable with ``torch.load(weights_only=True)``.

MMEngine 0.10.x calls ``torch.load`` without ``weights_only``, which
PyTorch >= 2.6 defaults to True, so resuming fails on the
``HistoryBuffer`` objects and numpy values of a checkpoint's
``message_hub``. :func:`allow_mmengine_checkpoint_globals` allow-lists
exactly the globals such checkpoints hold (found with
``torch.serialization.get_unsafe_globals_in_checkpoint`` on a toy
Runner's checkpoints): ``HistoryBuffer``; ``builtins.getattr`` mapped to a
shim that only resolves ``HistoryBuffer``'s statistics methods; numpy's
array / scalar reconstructors and the dtype classes ``BUILD`` needs, under
both the numpy 2 (``numpy._core``) and numpy 1 (``numpy.core``) names.
"""
import importlib
import pickle
import warnings
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.utils import digit_version

# The methods ``HistoryBuffer._set_default_statistics`` registers.
_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')

# numpy dtypes of the arrays and scalars MMEngine logs hold: float64 log
# history and eta, int64 (int32 on Windows) counts, float32 / bool values
# returned by metrics or logged by hooks.
_NUMPY_DTYPES = (np.float64, np.float32, np.int64, np.int32, np.bool_)

# An object, or ``(object, 'module.name')``: the object a pickle's
# ``module.name`` global resolves to.
AllowedGlobal = Union[Any, Tuple[Any, str]]

_ALLOWED: Optional[List[AllowedGlobal]] = None


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling weights-only.

    Only resolves the statistics methods of ``HistoryBuffer``.
    """
    if (isinstance(obj, type) and issubclass(obj, HistoryBuffer)
            and isinstance(name, str) and name in _HISTORY_BUFFER_STATISTICS):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed when loading a checkpoint '
        'with weights_only=True (only HistoryBuffer statistics methods are).')


def _numpy_multiarray_func(name: str) -> Callable:
    """Return ``numpy.{_core,core}.multiarray.<name>`` (numpy 2 or 1)."""
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            with warnings.catch_warnings():
                # ``numpy.core`` is a deprecated alias on numpy 2.
                warnings.simplefilter('ignore')
                return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f'Cannot find numpy multiarray.{name}')


def _supports_named_globals() -> bool:
    """Whether ``add_safe_globals`` accepts ``(obj, 'module.name')`` pairs.

    Supported from torch 2.6, the first release loading with
    ``weights_only=True`` by default.
    """
    return digit_version(torch.__version__) >= digit_version('2.6.0')


def _build_allow_list(named: bool) -> List[AllowedGlobal]:
    allowed: List[AllowedGlobal] = [HistoryBuffer, np.ndarray, np.dtype]
    # dtype classes (``numpy.dtypes.Float64DType`` on numpy >= 1.25,
    # ``numpy.dtype[float64]`` before): a pickled dtype is rebuilt as
    # ``numpy.dtype('f8', False, True)`` and then BUILD sets its state,
    # which torch only allows on allow-listed types.
    allowed += [type(np.dtype(t)) for t in _NUMPY_DTYPES]

    reconstruct = _numpy_multiarray_func('_reconstruct')
    scalar = _numpy_multiarray_func('scalar')
    if named:
        for pkg in ('numpy._core', 'numpy.core'):
            allowed.append((reconstruct, f'{pkg}.multiarray._reconstruct'))
            allowed.append((scalar, f'{pkg}.multiarray.scalar'))
        allowed.append((_history_buffer_getattr, 'builtins.getattr'))
    else:
        allowed += [reconstruct, scalar]
    return allowed


def allow_mmengine_checkpoint_globals() -> List[AllowedGlobal]:
    """Allow-list the globals of MMEngine checkpoints for ``torch.load``.

    Registers them with :func:`torch.serialization.add_safe_globals` so that
    MMEngine checkpoints (including the message hub state needed to resume
    training) load with ``weights_only=True``, the default since torch 2.6.
    Any other global is still refused.

    Idempotent; a no-op on torch versions without ``add_safe_globals``.

    Returns:
        list: The allowed objects; an entry ``(obj, 'module.name')`` means
        ``obj`` is what the name ``module.name`` in a pickle resolves to.
        Empty when torch lacks ``add_safe_globals``.
    """
    global _ALLOWED
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return []
    if _ALLOWED is None:
        _ALLOWED = _build_allow_list(named=_supports_named_globals())
    # Re-adding is harmless (a set union) and restores the entries if
    # someone called ``torch.serialization.clear_safe_globals`` meanwhile.
    add_safe_globals(_ALLOWED)
    return list(_ALLOWED)
