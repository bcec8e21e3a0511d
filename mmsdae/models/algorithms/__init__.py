from .ema_teacher import EMATeacherSelfSupervisor
from .frozen_teacher_distiller import FrozenTeacherSelfSupervisor
from .g2sd import G2SD
from .hybrid_distill import HybridDistill
from .rcmae import RCMAE
from .sdae import SdAE

__all__ = [
    'EMATeacherSelfSupervisor', 'FrozenTeacherSelfSupervisor', 'G2SD',
    'HybridDistill', 'RCMAE', 'SdAE'
]
