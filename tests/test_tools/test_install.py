"""Installation: setup.py reads requirements/, the environment tools/
setup_env.sh built holds exactly the pinned stack, and `pip check` is clean
(issue 17 item 6: an environment left with setuptools 69 made torch's
requirement fail and the next `pip install` break MMEngine's imports)."""
import os.path as osp
import re
import runpy
import subprocess
import sys
from importlib.metadata import version

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def setup_py():
    # setup() only runs under __main__, as in OpenMMLab's setup.py files
    return runpy.run_path(osp.join(REPO, 'setup.py'), run_name='setup_test')


def _pins(specs):
    return dict(s.split('==') for s in specs if '==' in s)


def test_setup_reads_the_requirement_files(setup_py, tmp_path):
    parse = setup_py['parse_requirements']
    runtime = parse('requirements/runtime.txt')
    pins = _pins(runtime)
    # the stack of notes/environment.md and the setuptools that has
    # pkg_resources (MMEngine 0.10.7) and satisfies torch (>= 77.0.3)
    assert pins == {
        'torch': '2.14.1', 'torchvision': '0.29.1', 'mmengine': '0.10.7',
        'mmcv': '2.1.0', 'mmpretrain': '1.2.0', 'mmdet': '3.3.0',
        'mmsegmentation': '1.2.2', 'setuptools': '80.9.0'}
    assert {'ftfy', 'regex'} <= set(runtime)  # mmseg imports them
    everything = parse('requirements.txt')
    assert everything == runtime + parse('requirements/optional.txt') + \
        parse('requirements/tests.txt')
    assert 'pytest' in _pins(everything)
    bad = tmp_path / 'bad.txt'
    bad.write_text('torch==2.14.1\n--index-url http://example.org\n')
    with pytest.raises(ValueError, match='not a requirement specifier'):
        parse(str(bad))


def test_setup_env_installs_the_requirement_files():
    """tools/setup_env.sh takes its versions from requirements/ (no second
    list of pins), builds mmcv with the old setuptools and ends with the
    requirements' one and a `pip check`."""
    script = open(osp.join(REPO, 'tools', 'setup_env.sh')).read()
    assert not re.search(r'^(TORCH|MMCV|MMPRETRAIN)_VER=[0-9]', script,
                         re.M)
    assert 'MMCV_VER=$(pin mmcv)' in script
    assert script.index('MMCV_BUILD_SETUPTOOLS"') < script.index(
        '-r "$REQS"') < script.index('pip-version-check check')


def test_venv_holds_the_pins_and_pip_check_is_clean(setup_py):
    pins = _pins(setup_py['parse_requirements']('requirements.txt'))
    installed = {name: version(name).split('+')[0] for name in pins}
    assert installed == pins, 'rerun tools/setup_env.sh'
    out = subprocess.run(
        [sys.executable, '-m', 'pip', '--disable-pip-version-check', 'check'],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    import pkg_resources  # noqa: F401  (MMEngine 0.10.7 imports it)
