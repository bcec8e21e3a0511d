from .layer_decay_constructor import ViTLayerDecayOptimWrapperConstructor
from .trainable_constructor import TrainableOptimWrapperConstructor

__all__ = [
    'TrainableOptimWrapperConstructor', 'ViTLayerDecayOptimWrapperConstructor'
]
