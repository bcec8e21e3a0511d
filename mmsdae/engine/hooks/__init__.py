from .teacher_ema_hook import (SdAETeacherEMAHook, TeacherEMAHook,
                               cosine_momentum)
from .train_summary_hook import TrainSummaryHook

__all__ = [
    'SdAETeacherEMAHook', 'TeacherEMAHook', 'TrainSummaryHook',
    'cosine_momentum'
]
