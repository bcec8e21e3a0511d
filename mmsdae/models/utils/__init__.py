from .attention_capture import (AttentionCapture, AttentionRecorder,
                                attention_maps)
from .frozen_teacher import (FrozenTeacher, build_frozen_teacher,
                             detached_frozen_teachers, frozen_teachers)
from .frozen_teacher_holder import FrozenTeacherHolderMixin
from .teacher_forward import (TEACHER_AMP_DTYPES, TeacherForwardMixin,
                              check_teacher_amp_dtype)
from .teacher_input import TEACHER_INPUT_MODES, TeacherInput
from .token_masking import (ProgressiveRedundantMasking,
                            class_token_attention)
from .vit import check_num_patches, run_encoder, to_pair

__all__ = [
    'AttentionCapture', 'AttentionRecorder', 'attention_maps',
    'check_num_patches', 'run_encoder', 'to_pair',
    'ProgressiveRedundantMasking', 'class_token_attention',
    'FrozenTeacher', 'FrozenTeacherHolderMixin', 'TEACHER_AMP_DTYPES',
    'TEACHER_INPUT_MODES', 'TeacherForwardMixin', 'TeacherInput',
    'build_frozen_teacher', 'check_teacher_amp_dtype',
    'detached_frozen_teachers', 'frozen_teachers'
]
