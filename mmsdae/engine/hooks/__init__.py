from .knn_monitor_hook import KNNMonitorHook, knn_accuracy, weighted_knn
from .teacher_ema_hook import (SdAETeacherEMAHook, TeacherEMAHook,
                               cosine_momentum)
from .train_summary_hook import TrainSummaryHook

__all__ = [
    'KNNMonitorHook', 'SdAETeacherEMAHook', 'TeacherEMAHook',
    'TrainSummaryHook', 'cosine_momentum', 'knn_accuracy', 'weighted_knn'
]
