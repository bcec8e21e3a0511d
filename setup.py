from setuptools import find_packages, setup


def get_version():
    scope = {}
    with open('mmsdae/version.py', encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmsdae',
    version=get_version(),
    description='Self-distilled masked image modeling (SdAE, RC-MAE, G2SD, '
    'Hybrid Distill) on the OpenMMLab stack',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    # The OpenMMLab stack is pinned and installed by tools/setup_env.sh
    # (mmcv must be built from source with ops); see requirements.txt.
    install_requires=[],
    license='Apache License 2.0',
)
