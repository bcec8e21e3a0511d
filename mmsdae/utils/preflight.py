"""Checks run by ``tools/train.py`` before a Runner is built: missing data,
unreadable or non-fitting ``Pretrained`` files, unknown config keys and a
missing EMA hook fail at start-up naming the config key and the fix.
"""
import ast
import difflib
import inspect
import os
import os.path as osp
import textwrap
from typing import Iterator, List, Optional, Sequence, Set, Tuple

from .checkpoint import load_checkpoint_file, unwrap_state_dict
from .constants import IMAGE_EXTENSIONS

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class PreflightError(ValueError):
    """A config problem found before training starts."""


def iter_pretrained_inits(node, path: str = 'model') -> Iterator[Tuple[str,
                                                                       dict]]:
    """Yield ``(config key, init_cfg)`` for every ``Pretrained`` init_cfg
    under ``node`` (dicts and lists are walked)."""
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained':
            yield path, node
        for key, value in node.items():
            yield from iter_pretrained_inits(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from iter_pretrained_inits(value, f'{path}[{i}]')


def check_pretrained_checkpoints(cfg, check_backbone: bool = True
                                 ) -> List[str]:
    """Every ``Pretrained`` init_cfg in ``cfg.model`` names a readable local
    file with keys under its ``prefix`` (and, for ``model.backbone``, that
    fits it); returns the checked paths. URLs are left to MMEngine."""
    checked = []
    for key, init in iter_pretrained_inits(cfg.get('model', {})):
        ckpt = init.get('checkpoint')
        fix = (f'pass --cfg-options {key}.checkpoint=<encoder.pth> (export '
               'one with tools/model_converters/sdae_to_vit.py), or '
               f'{key.rsplit(".init_cfg", 1)[0]}.init_cfg=None to train '
               'from scratch')
        if not ckpt:
            raise PreflightError(f'{key}.checkpoint is empty: {fix}.')
        if '://' in str(ckpt):
            continue
        if not osp.isfile(ckpt):
            raise PreflightError(
                f'{key}.checkpoint={ckpt!r} does not exist: {fix}.')
        prefix = init.get('prefix')
        if prefix:
            state = load_state_dict(ckpt)
            keys = list(state)
            if not any(k.startswith(prefix) for k in keys):
                found = sorted({k.split('.')[0] for k in keys})[:8]
                raise PreflightError(
                    f'{key}.checkpoint={ckpt!r} has no "{prefix}*" keys '
                    f'(top-level names: {found}). Convert it first: python '
                    f'tools/model_converters/sdae_to_vit.py {ckpt} <out.pth>')
            if check_backbone and key == 'model.backbone.init_cfg':
                check_backbone_fits(cfg, state, prefix, ckpt)
        checked.append(ckpt)
    return checked


def check_backbone_fits(cfg, state: dict, prefix: str, path: str) -> None:
    """``state`` (keys under ``prefix``) loads into ``cfg.model.backbone``
    (position grids may differ)."""
    from .checkpoint import build_backbone_from_config, check_against_backbone
    try:
        backbone = build_backbone_from_config(cfg)
    except ValueError:
        return  # the Runner will report the config error itself
    try:
        check_against_backbone(
            {k: v for k, v in state.items() if hasattr(v, 'shape')},
            backbone, prefix=prefix, resize_pos_embed=True)
    except ValueError as exc:
        raise PreflightError(
            f'model.backbone.init_cfg.checkpoint={path!r} does not fit '
            f'model.backbone: {exc}') from exc


def load_state_dict(path: str) -> dict:
    """The unwrapped tensors of a checkpoint file, memory-mapped; a bad
    file is a :class:`PreflightError`."""
    try:
        state, _ = unwrap_state_dict(
            load_checkpoint_file(
                path, mmap=True,
                unsafe_fix=('convert it first: python tools/model_converters/'
                            f'sdae_to_vit.py {path} <out.pth> --unsafe-load')),
            strip_module=False)
    except ValueError as exc:  # CheckpointFileError, or no tensors
        raise PreflightError(f'checkpoint {exc}') from exc
    return state


def iter_datasets(cfg, loader: str) -> Iterator[Tuple[str, dict]]:
    """``(config key, dataset dict)`` of a dataloader's dataset and of the
    datasets its wrappers (``dataset`` / ``datasets``) hold, outer first."""

    def walk(key, ds):
        if isinstance(ds, dict):
            yield key, ds
            yield from walk(f'{key}.dataset', ds.get('dataset'))
            for i, inner in enumerate(ds.get('datasets') or []):
                yield from walk(f'{key}.datasets[{i}]', inner)

    return walk(f'{loader}.dataset', (cfg.get(loader) or {}).get('dataset'))


def check_data_roots(cfg) -> List[str]:
    """Every non-empty local ``data_root`` exists and holds data; returns
    the checked roots."""
    checked = []
    for loader in DATALOADERS:
        for key, ds in iter_datasets(cfg, loader):
            root = ds.get('data_root')
            if not root or '://' in str(root):
                continue
            if not osp.isdir(root):
                hint = ('generate the tiny datasets with python tools/'
                        'dataset_converters/make_tiny_data.py --out '
                        f'{root.split("/tiny/")[0]}/tiny'
                        if '/tiny/' in f'/{root}' else
                        'download the dataset there (see the README, '
                        '"Data layout"), or pass --cfg-options '
                        f'{key}.data_root=<path>')
                raise PreflightError(
                    f'{key}.data_root={root!r} does not exist: '
                    f'{hint}.')
            check_data_contents(key, ds, root)
            checked.append(root)
    return checked


def check_data_contents(key: str, ds: dict, root: str) -> None:
    """The dataset's ``ann_file`` exists and is not blank, or else its
    image folder holds at least one image."""
    ann = ds.get('ann_file')
    if ann and '://' not in str(ann):
        path = ann if osp.isabs(ann) else osp.join(root, ann)
        if not osp.isfile(path):
            raise PreflightError(
                f'{key}.ann_file={ann!r}: {path!r} does not exist; fix the '
                'path, or set ann_file=\'\' to scan the image folder.')
        with open(path, 'rb') as f:
            if not f.read(1 << 16).strip():
                raise PreflightError(
                    f'{key}.ann_file: {path!r} is empty; it should list one '
                    'image per line (a path relative to the image folder, '
                    'then its class index for a labelled dataset).')
        return
    prefix = ds.get('data_prefix') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path') or prefix.get('img') or ''
    folder = osp.join(root, prefix) if prefix else root
    if not osp.isdir(folder):
        raise PreflightError(f'{key}: image folder {folder!r} does not '
                             'exist; fix data_prefix or data_root.')
    extensions = tuple(e.lower() for e in ds.get('extensions')
                       or IMAGE_EXTENSIONS)
    for _, _, files in os.walk(folder, followlinks=True):
        if any(f.lower().endswith(extensions) for f in files):
            return
    raise PreflightError(
        f'{key}: image folder {folder!r} holds no image files. Expected '
        f'{folder}/<class>/<image>.JPEG, or set ann_file.')


# --- unknown config keys (a typo swallowed by a **kwargs is silent) -------

# Model sub-dicts not walked (init_cfg, norm_cfg, mmdet's train_cfg ...)
MODEL_SKIP_SUFFIXES = ('_cfg', '_cfgs')
# Keys the Runner pops from a hook config before building it.
HOOK_EXTRA_KEYS = ('priority', )


def accepted_keys(cls) -> Optional[Set[str]]:
    """The keyword arguments ``cls(...)`` accepts, or None when it takes
    any: a ``**kwargs`` passed on to a base ``__init__`` adds the next
    base's keys."""
    import torch.nn as nn
    if not isinstance(cls, type):  # a registered function
        inits = [cls]
    else:
        inits = [k.__dict__['__init__'] for k in cls.__mro__
                 if '__init__' in k.__dict__]
    names: Set[str] = set()
    for init in inits:
        if init in (object.__init__, nn.Module.__init__):
            return names - {'self'}  # they take no keyword arguments
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return None
        names |= {name for name, p in params.items()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        var_kw = [n for n, p in params.items() if p.kind is p.VAR_KEYWORD]
        if not var_kw:
            return names - {'self'}
        if not forwards_kwargs_to_base_init(init, var_kw[0]):
            return None
    return None


def forwards_kwargs_to_base_init(init, var_kw: str) -> bool:
    """Whether ``init``'s source passes ``**var_kw`` to an ``__init__``
    (merely calling one wrongly flags e.g. mmseg's ``IoUMetric``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(
                node.func, ast.Attribute) and node.func.attr == '__init__':
            if any(kw.arg is None and isinstance(kw.value, ast.Name)
                   and kw.value.id == var_kw for kw in node.keywords):
                return True
    return False


def resolve_type(registry, type_, scope: Optional[str]):
    """The class a config ``type`` builds, as MMEngine's ``build`` finds it
    under the default scope; None if it cannot be found here."""
    if not isinstance(type_, str):
        return type_ if callable(type_) else None
    try:
        with registry.switch_scope_and_registry(scope) as reg:
            return reg.get(type_)
    except Exception:  # an uninstalled scope, a failing lazy import ...
        return None


def unknown_key_problems(node, path: str, registry, scope: Optional[str],
                         extra: Sequence[str] = (),
                         recurse: bool = False) -> List[str]:
    """Keys of the typed dict ``node`` (and below, with ``recurse``) that
    its class does not accept."""
    problems: List[str] = []
    if not isinstance(node, dict):
        return problems
    cls = resolve_type(registry, node.get('type'), scope)
    accepted = accepted_keys(cls) if cls is not None else None
    if accepted is not None:
        name = getattr(cls, '__name__', str(cls))
        problems += [
            f"{path}: unknown key '{key}' for {name}; {hint}"
            for key, hint in unknown_keys(node, accepted | set(extra))
        ]
        problems += nested_option_problems(cls, node, path)
    if recurse:
        for key, value in node.items():
            if str(key).endswith(MODEL_SKIP_SUFFIXES):
                continue
            children = value if isinstance(value, (list, tuple)) else [value]
            for i, child in enumerate(children):
                sub = f'{path}.{key}' + (f'[{i}]' if children is value else '')
                if isinstance(child, dict) and 'type' in child:
                    problems += unknown_key_problems(child, sub, registry,
                                                     scope, recurse=True)
    return problems


def unknown_keys(node: dict,
                 accepted: Set[str]) -> Iterator[Tuple[str, str]]:
    """``(key, hint)`` for every key of ``node`` not in ``accepted``."""
    for key in node:
        if key == 'type' or str(key).startswith('_') or key in accepted:
            continue
        close = difflib.get_close_matches(key, sorted(accepted), n=1)
        yield key, (f"did you mean '{close[0]}'?" if close else
                    f'it takes {", ".join(sorted(accepted)) or "none"}.')


def nested_option_problems(cls, node: dict, path: str) -> List[str]:
    """Untyped option dicts a class lists as ``nested_options = {key:
    OptionClass}``, checked against ``OptionClass.choices``."""
    problems = []
    for key, option_cls in (getattr(cls, 'nested_options', None)
                            or {}).items():
        options = node.get(key)
        if not isinstance(options, dict):
            continue
        sub = f'{path}.{key}'
        problems += [
            f"{sub}: unknown key '{name}' in {key}; {hint}"
            for name, hint in unknown_keys(options,
                                           accepted_keys(option_cls) or set())
        ]
        for field, allowed in getattr(option_cls, 'choices', {}).items():
            value = options.get(field)
            if field in options and value not in allowed:
                close = difflib.get_close_matches(str(value), allowed, n=1)
                hint = (f"did you mean '{close[0]}'?" if close else
                        f'choose one of {", ".join(allowed)}.')
                problems.append(f"{sub}: unknown {field} '{value}'; {hint}")
    return problems


def check_teacher_updates(cfg) -> None:
    """A model naming an ``ema_hook`` has a hook that updates its teacher
    (``updates_ema_teacher``)."""
    from mmengine import registry as reg

    scope = cfg.get('default_scope')
    model = resolve_type(reg.MODELS, (cfg.get('model') or {}).get('type'),
                         scope)
    wanted = getattr(model, 'ema_hook', None)
    if not wanted:
        return
    for hook in cfg.get('custom_hooks') or []:
        hook_cls = resolve_type(reg.HOOKS, hook.get('type'), scope)
        if getattr(hook_cls, 'updates_ema_teacher', False):
            return
    raise PreflightError(
        f'no hook updates the {model.__name__} teacher, so it would stay the '
        f'initial student: add {wanted} to custom_hooks.')


def check_unknown_keys(cfg) -> List[str]:
    """Every typed dict of the model, hooks, datasets, pipelines,
    evaluators and optimizer uses only keys its class accepts."""
    from mmengine import registry as reg

    scope = cfg.get('default_scope')
    problems = unknown_key_problems(cfg.get('model'), 'model', reg.MODELS,
                                    scope, recurse=True)
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        problems += unknown_key_problems(hook, f'custom_hooks[{i}]',
                                         reg.HOOKS, scope, HOOK_EXTRA_KEYS)
    for name, hook in (cfg.get('default_hooks') or {}).items():
        problems += unknown_key_problems(hook, f'default_hooks.{name}',
                                         reg.HOOKS, scope, HOOK_EXTRA_KEYS)
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer')
    problems += unknown_key_problems(optimizer, 'optim_wrapper.optimizer',
                                     reg.OPTIMIZERS, scope, ('params', ))
    for loader in DATALOADERS:
        for path, ds in iter_datasets(cfg, loader):
            problems += unknown_key_problems(ds, path, reg.DATASETS, scope)
            for j, step in enumerate(ds.get('pipeline') or []):
                problems += unknown_key_problems(
                    step, f'{path}.pipeline[{j}]', reg.TRANSFORMS, scope)
    for evaluator in ('val_evaluator', 'test_evaluator'):
        metrics = cfg.get(evaluator)
        for i, metric in enumerate(metrics if isinstance(metrics, list)
                                   else [metrics]):
            sub = f'{evaluator}[{i}]' if isinstance(metrics, list) \
                else evaluator
            problems += unknown_key_problems(metric, sub, reg.METRICS, scope)
    if problems:
        raise PreflightError(
            'unknown config keys or values (typos?):\n'
            + '\n'.join(f'  {p}' for p in problems) +
            '\nRename or remove them in the config or --cfg-options.')
    return problems

