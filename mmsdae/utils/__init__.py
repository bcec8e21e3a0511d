# Copyright (c) OpenMMLab. All rights reserved.
from .checkpoint import allow_mmengine_checkpoint_globals

__all__ = ['allow_mmengine_checkpoint_globals']
