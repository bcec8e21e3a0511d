"""Checkpoint I/O in one place.

* :mod:`.files`: the one reader (:func:`load_checkpoint_file`, weights-only
  loading, one error style :class:`CheckpointFileError`), the unwrapper
  (:func:`unwrap_state_dict`) and the one writer (:func:`atomic_write`,
  :func:`save_checkpoint`, the ``'local_atomic'`` MMEngine file backend);
* :mod:`.safe_globals`: the MMEngine types ``weights_only`` loading allows;
* :mod:`.formats`: layouts (mmsdae, timm, DINO) and their key maps, one
  dispatcher (:func:`convert_encoder`) to small per-format converters;
* :mod:`.vit`: checks of a converted ViT encoder, the pos_embed resize;
* :mod:`.export`: one encoder as ``backbone.*`` keys
  (``tools/model_converters/sdae_to_vit.py``);
* :mod:`.teacher`: a frozen teacher's parts (G2SD, Hybrid Distill).
"""
from .export import ConversionReport, convert_checkpoint, default_encoder
from .files import (AtomicLocalBackend, CheckpointFileError,
                    CheckpointNotFoundError, atomic_write,
                    load_checkpoint_file, save_checkpoint, unwrap_state_dict)
from .formats import (DINO_PREFIXES, ENCODER_PREFIXES, FORMATS,
                      TIMM_TO_MMPRETRAIN, convert_encoder, detect_format,
                      dino_to_timm, extract_encoder, timm_to_mmpretrain)
from .safe_globals import allow_mmengine_checkpoint_globals
from .teacher import (TEACHER_PARTS, TeacherCheckpointError, TeacherState,
                      describe_unused, read_teacher_checkpoint)
from .vit import (OPTIONAL_TARGET_KEYS, backbone_grid,
                  build_backbone_from_config, check_against_backbone,
                  check_consistency, interpolate_pos_embed)

__all__ = [
    'AtomicLocalBackend', 'CheckpointFileError', 'CheckpointNotFoundError',
    'ConversionReport', 'DINO_PREFIXES', 'ENCODER_PREFIXES', 'FORMATS',
    'OPTIONAL_TARGET_KEYS', 'TEACHER_PARTS', 'TIMM_TO_MMPRETRAIN',
    'TeacherCheckpointError', 'TeacherState',
    'allow_mmengine_checkpoint_globals', 'atomic_write', 'backbone_grid',
    'build_backbone_from_config', 'check_against_backbone',
    'check_consistency', 'convert_checkpoint', 'convert_encoder',
    'default_encoder', 'describe_unused', 'detect_format', 'dino_to_timm',
    'extract_encoder', 'interpolate_pos_embed', 'load_checkpoint_file',
    'read_teacher_checkpoint', 'save_checkpoint', 'timm_to_mmpretrain',
    'unwrap_state_dict'
]
