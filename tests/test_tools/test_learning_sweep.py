"""tools/benchmark/learning_sweep.py: variant files are checked before any
run, and the table's margins are the runs' own (means by hand)."""
import inspect
import json
import os
import os.path as osp

import pytest
from mmpretrain.registry import HOOKS, MODELS

from mmsdae.analysis import learning_signal as ls
from tool_loader import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'benchmark', 'learning_sweep.py')
SWEEPS = osp.join(REPO, 'tools', 'benchmark', 'sweeps')


@pytest.mark.parametrize('name', sorted(
    n for n in os.listdir(SWEEPS) if n.endswith('.json')))
def test_committed_sweeps_build_every_variant(tmp_path, name):
    """Every variant of the committed sweeps resolves to a config whose
    option keys exist before merging (a misspelt key would be added
    silently) and whose options, dropped hooks and length take effect."""
    variants = ls.load_variants(osp.join(SWEEPS, name))
    assert variants

    def get(cfg, key):
        for part in key.split('.'):
            cfg = cfg[int(part)] if part.isdigit() else cfg[part]
        return cfg

    def check_exists(cfg, key):
        """The key is in the config or an argument of its parent's class
        (KeyError / IndexError / AssertionError if misspelt)."""
        parent, _, name = key.rpartition('.')
        node = get(cfg, parent)
        if name not in node:
            registry = HOOKS if parent.startswith('custom_hooks') else MODELS
            cls = registry.get(node['type'])
            assert name in inspect.signature(cls).parameters, key

    for label, spec in variants.items():
        plain = ls.build_config(spec['config'], ls.BUDGETS['test'],
                                str(tmp_path / 'wd'))
        cfg = ls.build_config(spec['config'], ls.BUDGETS['test'],
                              str(tmp_path / 'wd'),
                              epochs=spec.get('epochs'),
                              cfg_options=spec.get('cfg_options'))
        assert cfg.train_cfg.max_epochs == spec.get('epochs', 20), label
        dropped = ls.build_config(spec['config'], ls.BUDGETS['test'],
                                  str(tmp_path / 'wd'),
                                  drop_hooks=spec.get('drop_hooks', ()))
        kinds = {h['type'] for h in dropped.custom_hooks}
        assert not kinds & set(spec.get('drop_hooks', ())), label
        for key, value in spec.get('cfg_options', {}).items():
            check_exists(plain, key)
            assert get(cfg, key) == value, (label, key)


@pytest.mark.parametrize('spec, message', [
    ({'method': 'BYOL'}, 'needs a config or a method'),
    ({'method': 'MAE', 'lr': 1e-3}, "unknown keys ['lr']"),
])
def test_bad_variants_are_refused(tmp_path, spec, message):
    path = tmp_path / 'variants.json'
    path.write_text(json.dumps({'bad': spec}))
    with pytest.raises(ValueError, match=message.replace('[', r'\[')
                       .replace(']', r'\]')):
        ls.load_variants(str(path))


def test_table_means_over_seeds():
    runs = [dict(label='A', seed=0, probe_margin=2.0, knn_margin=-1.0),
            dict(label='A', seed=1, probe_margin=5.0, knn_margin=0.0),
            dict(label='B', seed=0, probe_margin=-0.4, knn_margin=0.2)]
    rows = load_tool(TOOL).table(runs, ['A', 'B'], [0, 1]).splitlines()
    assert rows[2] == '| A | +2.0 | +5.0 | +3.5 | -0.5 |'
    assert rows[3] == '| B | -0.4 | - | -0.4 | +0.2 |'


def test_a_dropped_hook_the_config_lacks_is_refused(tmp_path):
    # a misspelt hook type would otherwise drop nothing and run the plain
    # recipe under the variant's label
    with pytest.raises(ValueError, match="drop_hooks \\['SdAEEMAHook'\\]"):
        ls.build_config(ls.CONFIGS['SdAE'], ls.BUDGETS['test'],
                        str(tmp_path), drop_hooks=('SdAEEMAHook', ))
