# Copyright (c) OpenMMLab. All rights reserved.
from .robustness import ALEXNET_ERRORS, MeanCorruptionError, SubsetAccuracy

__all__ = ['ALEXNET_ERRORS', 'MeanCorruptionError', 'SubsetAccuracy']
