from .specific_distill import (channel_wise_divergence, distill_warmup_factor,
                               hard_distillation_loss,
                               objectness_weighted_distillation)

__all__ = [
    'channel_wise_divergence', 'distill_warmup_factor',
    'hard_distillation_loss', 'objectness_weighted_distillation'
]
