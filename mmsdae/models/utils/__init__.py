from .teacher_input import TEACHER_INPUT_MODES, TeacherInput

__all__ = ['TeacherInput', 'TEACHER_INPUT_MODES']
