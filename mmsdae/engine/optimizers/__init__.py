from .amp_optim_wrapper import (AMP_DTYPES, MixedPrecisionOptimWrapper,
                                default_amp_dtype)
from .layer_decay_constructor import ViTLayerDecayOptimWrapperConstructor
from .trainable_constructor import TrainableOptimWrapperConstructor

__all__ = [
    'AMP_DTYPES', 'MixedPrecisionOptimWrapper',
    'TrainableOptimWrapperConstructor', 'ViTLayerDecayOptimWrapperConstructor',
    'default_amp_dtype'
]
