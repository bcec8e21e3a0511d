# Copyright (c) OpenMMLab. All rights reserved.
from .checkpoint import (ConversionReport, allow_mmengine_checkpoint_globals,
                         build_backbone_from_config, check_against_backbone,
                         check_consistency, convert_checkpoint, detect_format,
                         extract_encoder, interpolate_pos_embed,
                         load_checkpoint_file, save_checkpoint,
                         timm_to_mmpretrain, unwrap_state_dict)

__all__ = [
    'allow_mmengine_checkpoint_globals', 'ConversionReport',
    'build_backbone_from_config', 'check_against_backbone',
    'check_consistency', 'convert_checkpoint', 'detect_format',
    'extract_encoder', 'interpolate_pos_embed', 'load_checkpoint_file',
    'save_checkpoint', 'timm_to_mmpretrain', 'unwrap_state_dict'
]
