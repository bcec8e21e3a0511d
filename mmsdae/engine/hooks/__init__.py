from .teacher_ema_hook import SdAETeacherEMAHook, cosine_momentum
from .train_summary_hook import TrainSummaryHook

__all__ = ['SdAETeacherEMAHook', 'TrainSummaryHook', 'cosine_momentum']
