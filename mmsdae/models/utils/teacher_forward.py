"""How every teacher forward pass runs: the shared "teacher context".

A teacher (the EMA teacher of SdAE / RC-MAE, the frozen pre-trained
teachers of G2SD / Hybrid Distill) never receives a gradient, so its forward
pass runs in inference mode (no autograd record, no activations kept for
backward) and, when the training step runs under autocast (``--amp``),
under autocast in ``teacher_amp_dtype``: by default the step's own dtype
(``--amp-dtype``, bf16 or fp16), so teacher and student agree. Its outputs
come back as float32 copies made outside inference mode, so the loss is
computed as without AMP and its autograd may save them.

:func:`detached_modules` is how both kinds of teacher stay out of the
student's ``init_weights``.
"""
import contextlib
from typing import Callable, ContextManager, Iterator, Optional

import torch
from torch import nn
from torch.utils._pytree import tree_map

TEACHER_AMP_DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


def check_teacher_amp_dtype(teacher_amp_dtype: Optional[str]) -> None:
    """Raise ``ValueError`` for a ``teacher_amp_dtype`` that is neither a
    key of :data:`TEACHER_AMP_DTYPES` nor ``None``."""
    if teacher_amp_dtype is not None \
            and teacher_amp_dtype not in TEACHER_AMP_DTYPES:
        raise ValueError(
            f'teacher_amp_dtype={teacher_amp_dtype!r}: choose one of '
            f'{tuple(TEACHER_AMP_DTYPES)} or None (inherit the autocast '
            'dtype of the step).')


class TeacherForwardMixin:
    """:meth:`run_teacher` and :meth:`teacher_autocast_dtype` for an
    algorithm with teachers.

    The class using it sets ``self.teacher_amp_dtype`` (checked with
    :func:`check_teacher_amp_dtype`): the autocast dtype of the teacher when
    the step runs under autocast, ``None`` (default) to follow the step's
    autocast dtype, or ``'bfloat16'`` / ``'float16'`` to override it (bf16
    has float32's range, so an fp16 run may keep its targets from
    overflowing that way). Without autocast the teacher runs in float32
    whatever it says.
    """

    teacher_amp_dtype: Optional[str] = None
    #: When set, a function returning a context manager that
    #: :meth:`run_teacher` enters around every teacher pass (e.g. the speed
    #: benchmark's timer, :mod:`mmsdae.analysis.benchmark`).
    teacher_pass_hook: Optional[Callable[[], ContextManager]] = None

    def teacher_autocast_dtype(self,
                               device_type: str) -> Optional[torch.dtype]:
        """The teacher's autocast dtype for this step, ``None`` for none.

        Autocast is on for the teacher only when the caller (the student's
        step) is under autocast. bf16 on a GPU without bf16 support falls
        back to the step's own dtype.
        """
        if not torch.is_autocast_enabled(device_type):
            return None
        if self.teacher_amp_dtype is None:
            return torch.get_autocast_dtype(device_type)
        dtype = TEACHER_AMP_DTYPES[self.teacher_amp_dtype]
        if device_type == 'cuda' and dtype == torch.bfloat16 \
                and not torch.cuda.is_bf16_supported():
            return torch.get_autocast_dtype(device_type)
        return dtype

    def run_teacher(self, fn: Callable, inputs: torch.Tensor, *args,
                    **kwargs):
        """Run ``fn(inputs, *args, **kwargs)``, a teacher forward pass, as
        the module docstring says (autocast dtype from
        :meth:`teacher_autocast_dtype`; floating-point results come back as
        float32 copies)."""
        device_type = inputs.device.type
        dtype = self.teacher_autocast_dtype(device_type)
        autocast = torch.autocast(device_type, dtype=dtype) \
            if dtype is not None else contextlib.nullcontext()

        def _copy(value):
            if not isinstance(value, torch.Tensor):
                return value
            if value.is_floating_point():
                return value.to(torch.float32, copy=True)
            return value.clone()

        hook = self.teacher_pass_hook
        with hook() if hook is not None else contextlib.nullcontext():
            with torch.inference_mode(), autocast:
                outputs = fn(inputs, *args, **kwargs)
            return tree_map(_copy, outputs)


@contextlib.contextmanager
def detached_modules(model: nn.Module,
                     select: Callable[[nn.Module], bool]) -> Iterator[None]:
    """Take every sub-module of ``model`` for which ``select`` is true out
    of the module tree for the duration of the block, e.g. the teachers
    around ``init_weights``: no initializer (a parent ``init_cfg``, the
    parts' own ``init_weights``) touches them, and the student draws the
    same random numbers as without them. The children and their order are
    restored afterwards, also after an exception."""
    saved = []
    for parent in list(model.modules()):
        if select(parent):
            continue
        if any(select(c) for c in parent._modules.values() if c is not None):
            saved.append((parent, list(parent._modules.items())))
    for parent, children in saved:
        for name, child in children:
            if child is not None and select(child):
                del parent._modules[name]
    try:
        yield
    finally:
        for parent, children in saved:
            parent._modules.clear()
            parent._modules.update(children)
