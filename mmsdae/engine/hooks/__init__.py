from .bad_image_hook import BadImageHook
from .checkpoint_hooks import (AtomicCheckpointHook,
                               CheckpointCompatibilityHook)
from .knn_monitor_hook import KNNMonitorHook, knn_accuracy, weighted_knn
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .teacher_ema_hook import (SdAETeacherEMAHook, TeacherEMAHook,
                               cosine_momentum)
from .train_summary_hook import TrainSummaryHook

__all__ = [
    'AtomicCheckpointHook', 'BadImageHook', 'CheckpointCompatibilityHook',
    'KNNMonitorHook', 'NonFiniteLossError',
    'NonFiniteLossHook', 'SdAETeacherEMAHook', 'TeacherEMAHook',
    'TrainSummaryHook', 'cosine_momentum', 'knn_accuracy', 'weighted_knn'
]
