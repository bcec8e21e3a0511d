import os.path as osp
import re

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def get_version():
    scope = {}
    with open(osp.join(ROOT, 'mmsdae', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(fname='requirements.txt'):
    """The requirement specifiers of a requirements file, as OpenMMLab's
    setup.py files read them: comments and blank lines dropped, ``-r FILE``
    followed (relative to the including file), environment markers kept.

    Raises:
        ValueError: for a line that is no requirement specifier.
    """
    path = fname if osp.isabs(fname) else osp.join(ROOT, fname)
    specs = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                specs += parse_requirements(
                    osp.join(osp.dirname(path), line[3:].strip()))
                continue
            if not re.match(r'^[A-Za-z0-9][A-Za-z0-9._-]*\s*'
                            r'([<>=!~]=?[^;]*)?(;.*)?$', line):
                raise ValueError(f'{path}: {line!r} is not a requirement '
                                 'specifier (name[op version][; marker]).')
            specs.append(line)
    return specs


if __name__ == '__main__':
    setup(
        name='mmsdae',
        version=get_version(),
        description='Self-distilled masked image modeling (SdAE, RC-MAE, '
        'G2SD, Hybrid Distill) on the OpenMMLab stack',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        python_requires='>=3.8',
        # tools/setup_env.sh installs these (mmcv built with its ops).
        install_requires=parse_requirements('requirements/runtime.txt'),
        extras_require={
            'all': parse_requirements('requirements.txt'),
            'tests': parse_requirements('requirements/tests.txt'),
            'optional': parse_requirements('requirements/optional.txt'),
        },
        # the official class lists of ImageNet-1k / -A / -R
        package_data={'mmsdae.datasets': ['wnids/*.txt']},
        license='Apache License 2.0',
        zip_safe=False,
    )
