"""Imports a script of ``tools/`` (no package) from its path, for tests."""
import importlib.util
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(path: str):
    """The module of ``tools/<path>`` (e.g. ``'benchmark/gpu_check.py'``; an
    absolute path is taken as it is), imported afresh (not registered in
    ``sys.modules``)."""
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(
        name, osp.join(REPO, 'tools', path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
