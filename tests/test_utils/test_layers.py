"""Layers point down (style notes, issue 17): tools/ -> analysis/ ->
models/, engine/ -> utils/, datasets/. Every import of every module of the
package, at any depth (function-level imports included), is read with
``ast`` and checked against the table below."""
import ast
import os
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: sub-package -> the sub-packages of mmsdae it may import
ALLOWED = {
    'utils': set(),
    'datasets': {'utils'},
    'models': {'utils', 'datasets'},
    'engine': {'utils', 'datasets'},
    'evaluation': {'utils', 'datasets'},
    'analysis': {'utils', 'datasets', 'models', 'engine', 'evaluation'},
}


def imported_modules(path: str, module: str):
    """``(line, dotted name)`` of every import in the file ``path`` of the
    module ``module`` (relative imports resolved)."""
    package = module.split('.')
    if not path.endswith('__init__.py'):
        package = package[:-1]
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = '.'.join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ''
            yield node.lineno, name


def layer_violations(package_dir: str):
    """``'file:line imports X'`` for every import that points up or
    sideways, under ``package_dir`` (a folder named like the package)."""
    top = osp.basename(package_dir)
    problems = []
    for folder, _, files in os.walk(package_dir):
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            path = osp.join(folder, name)
            rel = osp.relpath(path, osp.dirname(package_dir))
            module = rel[:-3].replace(os.sep, '.')
            if module.endswith('.__init__'):
                module = module[:-len('.__init__')]
            parts = module.split('.')
            layer = parts[1] if len(parts) > 1 else None
            if layer not in ALLOWED:
                continue
            for line, target in imported_modules(path, module):
                target_parts = target.split('.')
                if target_parts[0] == 'tools':
                    problems.append(f'{rel}:{line} imports {target}')
                    continue
                if target_parts[0] != top or len(target_parts) < 2:
                    continue
                other = target_parts[1]
                if other != layer and other in ALLOWED and \
                        other not in ALLOWED[layer]:
                    problems.append(f'{rel}:{line} imports {target}')
    return problems


def test_the_package_imports_only_downwards():
    package = osp.join(ROOT, 'mmsdae')
    layers = {name for name in os.listdir(package)
              if osp.isfile(osp.join(package, name, '__init__.py'))}
    assert layers == set(ALLOWED), 'give a new sub-package its place'
    assert layer_violations(package) == []


@pytest.mark.parametrize('layer, line, expected', [
    ('models/utils', 'from mmsdae.analysis.attention import run_encoder',
     'mmsdae.analysis.attention'),
    ('models/algorithms', 'from ...analysis import attention',
     'mmsdae.analysis'),
    ('utils', 'from ..models.utils.teacher_input import TeacherInput',
     'mmsdae.models.utils.teacher_input'),
    ('datasets', '    from mmsdae.analysis.checkpoints import load_images',
     'mmsdae.analysis.checkpoints'),
    ('utils', 'import tools.train', 'tools.train'),
])
def test_a_deliberately_bad_import_is_found(tmp_path, layer, line, expected):
    package = tmp_path / 'mmsdae'
    folder = package / layer
    folder.mkdir(parents=True)
    body = f'def f():\n{line}\n' if line.startswith(' ') else f'{line}\n'
    (folder / 'bad.py').write_text(body)
    (package / 'models' / 'ok.py').parent.mkdir(exist_ok=True)
    (package / 'models' / 'ok.py').write_text(
        'from ..utils import constants\nfrom mmsdae.datasets import x\n')
    problems = layer_violations(str(package))
    assert len(problems) == 1
    assert problems[0].startswith(f'mmsdae/{layer}/bad.py:')
    assert problems[0].endswith(f'imports {expected}')
