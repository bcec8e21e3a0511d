from .ema_teacher import EMATeacherSelfSupervisor
from .rcmae import RCMAE
from .sdae import SdAE

__all__ = ['EMATeacherSelfSupervisor', 'RCMAE', 'SdAE']
