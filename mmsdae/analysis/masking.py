"""The masking of one batch and what each method's decoder produced.

"Seeing what the model learned": for one batch, per image,

- the student's mask (visible patches shown, masked ones greyed);
- the teacher's sequences: SdAE's teacher input (Sec. 2.2; multi-fold
  masking: every fold of masked patches is its own teacher sequence, Fig. 3,
  Fig. 4(b)), RC-MAE-D's own teacher mask (RC-MAE Sec. 5);
- what the decoder produced: SdAE's per-token cosine between the predicted
  and the (Eq. 3 normalised) teacher feature on the target positions (the
  quantity Eq. 4 averages); MAE / RC-MAE's pixel reconstruction, with the
  per-patch ``norm_pix`` normalisation undone (the usual MAE picture), and
  for RC-MAE also the teacher's reconstruction (``Y^'`` of RC-MAE Eq. 6).

The masks come from the model's own code path: :func:`analyze_batch` seeds
torch and then makes the same calls, in the same order, as the model's
``loss`` (``backbone`` -> ``neck`` -> ``teacher_input.sample`` /
``teacher_reconstruction``), so the picture shows exactly the masks a
training step with that seed draws (the tests check that the numbers
reproduce ``model.loss``). The model runs in eval mode (no drop path).

The pure functions (:func:`fold_assignment`, :func:`token_cosine`,
:func:`unnormalize_pixels`, ...) are usable alone; :func:`visualize_masking`
is the driver behind ``tools/analysis_tools/vis_masking.py``.
"""
import json
import math
import os
import os.path as osp
import textwrap
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

METHODS = ('sdae', 'rcmae', 'mae')

# Figure geometry (pixels at DPI): one square panel per (image, column) and a
# header strip for the title, the legend and the cosine colour bar.
DPI = 100
PANEL_PX = 200
HEADER_PX = 100  # title (2 lines), legend, colour bar, column names
_TITLE_PX = 14  # inside a panel, above its image
_MARGIN_PX = 6

COSINE_RANGE = (-1.0, 1.0)
TEACHER_OUTLINE = (0.9, 0.1, 0.1)  # RC-MAE-D's teacher-visible patches
_MASKED_GREY = 0.72  # brightness of a masked patch (light grey wash)
_NO_TARGET_DARKEN = 0.5  # masked patch outside every teacher sequence


# --------------------------------------------------------------- helpers ---
def method_of(model) -> str:
    """``'sdae'``, ``'rcmae'`` or ``'mae'`` (mmpretrain's MAE)."""
    from mmpretrain.models import MAE

    from mmsdae.models.algorithms.rcmae import RCMAE
    from mmsdae.models.algorithms.sdae import SdAE
    if isinstance(model, SdAE):
        return 'sdae'
    if isinstance(model, RCMAE):
        return 'rcmae'
    if isinstance(model, MAE):
        return 'mae'
    raise TypeError(
        f'{type(model).__name__} is not SdAE, RCMAE or MAE: vis_masking '
        'knows the masks and decoders of those three only.')


def grid_shape(model) -> Tuple[int, int]:
    """Patch grid (rows, columns) of the model's encoder."""
    return tuple(int(s) for s in model.backbone.patch_resolution)


def fold_assignment(teacher_ids: torch.Tensor,
                    num_patches: int) -> torch.Tensor:
    """(B, N): the teacher sequence ``g`` of ``teacher_ids`` (B, G, n,
    ``TeacherInput.sample``) each patch is in, -1 for none; a patch in two
    sequences is an error."""
    if teacher_ids.dim() != 3:
        raise ValueError('teacher_ids must be (batch, sequences, tokens), '
                         f'got shape {tuple(teacher_ids.shape)}.')
    batch, groups, length = teacher_ids.shape
    flat = teacher_ids.reshape(batch, groups * length).long()
    if flat.numel() and (flat.min() < 0 or flat.max() >= num_patches):
        raise ValueError(f'teacher_ids outside [0, {num_patches}).')
    counts = torch.zeros(batch, num_patches, dtype=torch.long,
                         device=flat.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat))
    if (counts > 1).any():
        b, j = (counts > 1).nonzero()[0].tolist()
        raise ValueError(f'patch {j} of image {b} is in '
                         f'{int(counts[b, j])} teacher sequences.')
    folds = torch.arange(groups, device=flat.device).repeat_interleave(length)
    assignment = torch.full((batch, num_patches), -1, dtype=torch.long,
                            device=flat.device)
    assignment.scatter_(1, flat, folds.expand(batch, -1))
    return assignment


def token_cosine(pred: torch.Tensor, target: torch.Tensor,
                 target_mask: torch.Tensor, head) -> torch.Tensor:
    """SdAE's per-token cosine (Eq. 4) as ``head`` (:class:`SdAEHead`)
    computes it (Eq. 3 normalisation), (B, N), NaN where there is no
    target."""
    target = target.float()
    if head.norm_target:
        target = head.normalize_target(target)
    cos = (F.normalize(pred.float(), dim=-1) *
           F.normalize(target, dim=-1)).sum(dim=-1)
    return cos.masked_fill(~target_mask.bool(), float('nan'))


def unnormalize_pixels(pred: torch.Tensor, target_patches: torch.Tensor,
                       eps: float = 1e-6) -> torch.Tensor:
    """Undo MAE's ``norm_pix``: ``pred * sqrt(var + eps) + mean`` with each
    target patch's own (unbiased) statistics, as MAE's visualisation does."""
    mean = target_patches.mean(dim=-1, keepdim=True)
    var = target_patches.var(dim=-1, keepdim=True)
    return pred * (var + eps).sqrt() + mean


def pixel_reconstruction(head, pred: torch.Tensor,
                         inputs: torch.Tensor) -> torch.Tensor:
    """A pixel decoder's output as an image batch (B, C, H, W) in the
    space of ``inputs`` (``norm_pix`` undone when the head uses it)."""
    patches = head.patchify(inputs)
    if head.norm_pix:
        pred = unnormalize_pixels(pred, patches)
    return head.unpatchify(pred)


def paste_visible(reconstruction: torch.Tensor, inputs: torch.Tensor,
                  mask: torch.Tensor, head) -> torch.Tensor:
    """The reconstruction with the visible patches (``mask == 0``) copied
    from the input: MAE's "reconstruction + visible" picture."""
    rec = head.patchify(reconstruction)
    inp = head.patchify(inputs)
    keep = (mask == 0).unsqueeze(-1)
    return head.unpatchify(torch.where(keep, inp, rec))


def per_patch_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, N) mean squared error over each patch's values (the L2
    ``PixelReconstructionLoss`` before its average over masked patches)."""
    return ((pred.float() - target.float())**2).mean(dim=-1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean of ``values`` where ``mask``, ignoring NaN; NaN if empty."""
    picked = values[mask.bool() & ~torch.isnan(values)]
    return float(picked.mean()) if picked.numel() else float('nan')


# ---------------------------------------------------------- model + data ---
def load_model(config, checkpoint: str):
    """The whole pre-training model of ``config`` with every weight from
    ``checkpoint`` (strict: the decoder is what is shown), CPU, eval mode."""
    from mmengine.runner import load_state_dict

    from .checkpoints import build_model, load_config, read_checkpoint

    cfg = load_config(config)
    checkpoint = os.fspath(checkpoint)
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'Checkpoint file {checkpoint!r} does not exist: train one '
            f'(python tools/train.py {cfg.filename}) or fix the path.')
    model = build_model(cfg)
    method_of(model)  # refuse other models early
    loaded = read_checkpoint(cfg, checkpoint)
    try:
        load_state_dict(model, loaded.get('state_dict', loaded),
                        strict=True, logger='current')
    except RuntimeError as error:
        raise KeyError(
            f'Checkpoint {checkpoint!r} does not fit the '
            f'{type(model).__name__} model of {cfg.filename!r} (the whole '
            f'pre-training model is needed): {error}') from error
    return model.eval()


def to_display(model, inputs: torch.Tensor) -> np.ndarray:
    """Model-space images (B, C, H, W) -> uint8 RGB (B, H, W, 3): undo the
    data preprocessor's normalisation (and channel order)."""
    pre = model.data_preprocessor
    images = inputs.detach().float().cpu()
    if getattr(pre, '_enable_normalize', False):
        images = images * pre.std.cpu() + pre.mean.cpu()
    images = images.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()
    if not getattr(pre, '_channel_conversion', False):
        images = images[..., ::-1]  # the model saw BGR
    return np.ascontiguousarray(images)


# ------------------------------------------------------------- analysis ---
@dataclass
class MaskingResult:
    """Everything one batch shows (tensors on CPU, ids in raster order of
    the ``grid``; ``visible_ids`` / ``masked_ids`` in the mask's random
    order, which is the order the folds are cut in)."""

    method: str
    description: str
    grid: Tuple[int, int]
    patch_size: int
    images: np.ndarray  # (B, H, W, 3) uint8 input
    visible_ids: torch.Tensor  # (B, num_visible)
    masked_ids: torch.Tensor  # (B, num_masked)
    teacher_ids: Optional[torch.Tensor]  # (B, G, n) or None (MAE)
    target_mask: torch.Tensor  # (B, N) bool: where the loss applies
    fold: torch.Tensor  # (B, N), fold_assignment(teacher_ids), -1 none
    losses: Dict[str, float] = field(default_factory=dict)
    teacher_mode: str = ''
    # SdAE
    cosine: Optional[torch.Tensor] = None  # (B, N), NaN off target
    # MAE / RC-MAE
    reconstruction: Optional[np.ndarray] = None  # (B, H, W, 3) uint8
    reconstruction_visible: Optional[np.ndarray] = None
    teacher_reconstruction: Optional[np.ndarray] = None
    mse: Optional[torch.Tensor] = None  # (B, N) vs the norm_pix target
    teacher_mse: Optional[torch.Tensor] = None
    consistency: Optional[torch.Tensor] = None  # (B, N) student-teacher

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def mask(self) -> torch.Tensor:
        """(B, N) bool, True on the student's masked patches."""
        mask = torch.zeros(self.visible_ids.shape[0], self.num_patches,
                           dtype=torch.bool)
        return mask.scatter_(1, self.masked_ids, True)


@torch.no_grad()
def analyze_batch(model, inputs: torch.Tensor, seed: int = 0
                  ) -> MaskingResult:
    """Run one batch through the model's own masking / decoding path.

    ``torch.manual_seed(seed)`` is set right before the calls ``loss``
    makes, in its order, so ``model.loss(inputs, None)`` after the same
    seed draws the same masks (and, in eval mode, returns the losses stored
    in ``MaskingResult.losses``).
    """
    method = method_of(model)
    model.eval()
    inputs = inputs.float()
    num_patches = model.backbone.num_patches
    head = model.head
    common = dict(
        method=method,
        grid=grid_shape(model),
        patch_size=int(model.backbone.patch_embed.projection.kernel_size[0]),
        images=to_display(model, inputs))

    torch.manual_seed(seed)
    latent, mask, ids_restore = model.backbone(inputs)
    pred = model.neck(latent, ids_restore)
    num_visible = latent.shape[1] - 1  # the class token comes first
    order = ids_restore.argsort(dim=1)
    visible_ids, masked_ids = order[:, :num_visible], order[:, num_visible:]

    if method == 'sdae':
        ti = model.teacher_input
        teacher_ids, target_mask = ti.sample(masked_ids, num_patches)
        target = model.teacher_targets(inputs, teacher_ids)
        cosine = token_cosine(pred, target, target_mask, head)
        mode = {
            'multi_fold': f'multi_fold, {ti.num_folds} folds of '
                          f'{teacher_ids.shape[2]}'
                          + (' (drop_remainder)' if ti.drop_remainder
                             else ''),
            'masked': 'masked (one sequence)',
            'crop': f'crop, {ti.crop_tokens} tokens',
            'full': 'full image',
        }[ti.mode]
        loss = float(head.loss(pred, target, target_mask))
        return MaskingResult(
            description=f'SdAE, teacher input {mode}',
            visible_ids=visible_ids.cpu(), masked_ids=masked_ids.cpu(),
            teacher_ids=teacher_ids.cpu(), target_mask=target_mask.cpu(),
            fold=fold_assignment(teacher_ids, num_patches).cpu(),
            cosine=cosine.cpu(), teacher_mode=ti.mode,
            # the names SdAE.loss logs
            losses=dict(loss=loss, cos_sim=masked_mean(cosine, target_mask)),
            **common)

    target_mask = mask.bool()
    pixel_target = head.construct_target(inputs)
    reconstruction = pixel_reconstruction(head, pred, inputs)
    result = MaskingResult(
        description='MAE (mmpretrain)',
        visible_ids=visible_ids.cpu(), masked_ids=masked_ids.cpu(),
        teacher_ids=None, target_mask=target_mask.cpu(),
        fold=torch.full((inputs.shape[0], num_patches), -1, dtype=torch.long),
        reconstruction=to_display(model, reconstruction),
        reconstruction_visible=to_display(
            model, paste_visible(reconstruction, inputs, mask, head)),
        mse=per_patch_mse(pred, pixel_target).cpu(),
        **common)
    mse_masked = masked_mean(result.mse, target_mask.cpu())
    if method == 'mae':
        result.losses = dict(loss=float(head.loss(pred, inputs, mask)),
                             mse_masked=mse_masked)
        return result

    teacher_pred, teacher_ids_restore = model.teacher_reconstruction(
        inputs, ids_restore)
    teacher_visible = teacher_ids_restore.argsort(dim=1)[:, :num_visible]
    result.teacher_ids = teacher_visible[:, None].cpu()
    result.fold = fold_assignment(result.teacher_ids, num_patches)
    result.teacher_mode = model.teacher_mask
    result.description = ('RC-MAE-S (teacher encodes the student\'s '
                          'visible patches)' if model.teacher_mask == 'same'
                          else 'RC-MAE-D (teacher draws its own mask)')
    result.teacher_reconstruction = to_display(
        model, pixel_reconstruction(head, teacher_pred, inputs))
    result.teacher_mse = per_patch_mse(teacher_pred, pixel_target).cpu()
    result.consistency = per_patch_mse(pred, teacher_pred).cpu()
    losses = head.loss(pred, teacher_pred, inputs, mask)
    result.losses = dict(
        {k: float(v) for k, v in losses.items()},
        mse_masked=mse_masked,
        teacher_mse_masked=masked_mean(result.teacher_mse, target_mask.cpu()))
    return result


# --------------------------------------------------------------- output ---
def _ids(tensor) -> List[int]:
    return [int(v) for v in tensor.tolist()]


def _float(value) -> Optional[float]:
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


def _floats(tensor) -> List[Optional[float]]:
    return [_float(v) for v in tensor.tolist()]


def result_to_json(result: MaskingResult, **meta) -> dict:
    """A JSON-able record of the batch: per image the visible / masked ids
    (random order), teacher sequences, target positions and the per-token
    cosine (SdAE) or per-patch MSE (MAE / RC-MAE)."""
    images = []
    for b in range(result.visible_ids.shape[0]):
        entry = dict(
            index=b,
            visible_ids=_ids(result.visible_ids[b]),
            masked_ids=_ids(result.masked_ids[b]),
            teacher_sequences=([] if result.teacher_ids is None else
                               [_ids(seq) for seq in result.teacher_ids[b]]),
            target_positions=_ids(result.target_mask[b].nonzero()[:, 0]),
            fold_of_patch=_ids(result.fold[b]))
        if result.cosine is not None:
            entry['cosine'] = _floats(result.cosine[b])
            entry['mean_cosine'] = _float(masked_mean(result.cosine[b],
                                                      result.target_mask[b]))
        if result.mse is not None:
            entry['mse'] = _floats(result.mse[b])
            entry['mse_masked_mean'] = _float(masked_mean(
                result.mse[b], result.target_mask[b]))
        if result.teacher_mse is not None:
            entry['teacher_mse'] = _floats(result.teacher_mse[b])
            entry['consistency'] = _floats(result.consistency[b])
        images.append(entry)
    return dict(
        meta,
        method=result.method,
        description=result.description,
        teacher_mode=result.teacher_mode,
        grid=list(result.grid),
        patch_size=result.patch_size,
        num_patches=result.num_patches,
        num_visible=int(result.visible_ids.shape[1]),
        id_order=('patch ids are raster indices (row * grid_w + col); '
                  'visible_ids / masked_ids are in the mask\'s random order, '
                  'the order the folds are cut in; fold_of_patch is -1 '
                  'outside every teacher sequence'),
        losses={k: _float(v) for k, v in result.losses.items()},
        images=images)


def columns_of(result: MaskingResult) -> List[str]:
    """The panel titles of one figure row."""
    if result.method == 'sdae':
        return ['input', 'mask + teacher sequences',
                'cos(prediction, teacher)']
    mask_title = ('mask (teacher visible outlined)'
                  if result.teacher_mode == 'different' else 'mask')
    columns = ['input', mask_title, 'reconstruction',
               'reconstruction + visible']
    if result.method == 'rcmae':
        columns.append('teacher reconstruction')
    return columns


def figure_size_px(num_rows: int, num_columns: int) -> Tuple[int, int]:
    """(width, height) in pixels of the saved figure."""
    return num_columns * PANEL_PX, num_rows * PANEL_PX + HEADER_PX


def fold_colours(num_folds: int) -> np.ndarray:
    """(num_folds, 3) RGB colours in [0, 1] (tab10, then tab20)."""
    from matplotlib import colormaps
    cmap = colormaps['tab10' if num_folds <= 10 else 'tab20']
    return np.array([cmap(g % cmap.N)[:3] for g in range(num_folds)])


def mask_picture(image: np.ndarray, masked: np.ndarray, fold: np.ndarray,
                 grid: Tuple[int, int], colours: np.ndarray,
                 tint: bool = True) -> np.ndarray:
    """The mask panel (float RGB in [0, 1]): masked patches greyed and,
    with ``tint``, coloured by teacher sequence or darkened without one."""
    height, width = image.shape[:2]
    ph, pw = height // grid[0], width // grid[1]
    picture = image.astype(np.float32) / 255
    grey = picture.mean(axis=-1, keepdims=True).repeat(3, axis=-1)
    grey = 0.2 * grey + 0.8 * _MASKED_GREY
    for j in np.flatnonzero(masked):
        r, c = divmod(int(j), grid[1])
        cell = (slice(r * ph, (r + 1) * ph), slice(c * pw, (c + 1) * pw))
        patch = grey[cell]
        if tint and fold[j] >= 0:
            patch = 0.35 * patch + 0.65 * colours[fold[j]]
        elif tint:
            patch = patch * _NO_TARGET_DARKEN
        picture[cell] = patch
    return picture


def _patch_rect(j: int, grid, patch_px, **kwargs):
    from matplotlib.patches import Rectangle
    r, c = divmod(int(j), grid[1])
    inset = 0.06 * patch_px
    return Rectangle((c * patch_px - 0.5 + inset, r * patch_px - 0.5 + inset),
                     patch_px - 2 * inset, patch_px - 2 * inset, **kwargs)


def plot_result(result: MaskingResult, title: str = ''):
    """A ``Figure`` of exactly :func:`figure_size_px` pixels at :data:`DPI`:
    a header (title, legend, colour bar, column names), then one row per
    image with the panels of :func:`columns_of`."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    columns = columns_of(result)
    rows = result.visible_ids.shape[0]
    width, height = figure_size_px(rows, len(columns))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    grid = result.grid
    patch_px = result.images.shape[1] // grid[1]
    sdae = result.method == 'sdae'
    num_folds = 0 if result.teacher_ids is None \
        else result.teacher_ids.shape[1]
    colours = fold_colours(max(num_folds, 1)) if sdae else \
        np.array([TEACHER_OUTLINE])
    masks = result.mask.numpy()
    folds = result.fold.numpy()
    targets = result.target_mask
    cmap = colormaps['RdYlGn'].with_extremes(bad='white')
    heat = None

    def panel(row, col):
        left = (col * PANEL_PX + _MARGIN_PX) / width
        bottom = (height - HEADER_PX - (row + 1) * PANEL_PX
                  + _MARGIN_PX) / height
        ax = fig.add_axes((left, bottom, (PANEL_PX - 2 * _MARGIN_PX) / width,
                           (PANEL_PX - _TITLE_PX - _MARGIN_PX) / height))
        ax.set_xticks([])
        ax.set_yticks([])
        return ax

    def show_grid(ax):
        for k in range(1, grid[1]):
            ax.axvline(k * patch_px - 0.5, color='white', lw=0.3, alpha=0.7)
        for k in range(1, grid[0]):
            ax.axhline(k * patch_px - 0.5, color='white', lw=0.3, alpha=0.7)

    for b in range(rows):
        mask, fold = masks[b], folds[b]
        for col, name in enumerate(columns):
            ax = panel(b, col)
            if name == 'input':
                ax.imshow(result.images[b])
                info = f'image {b}'
            elif name.startswith('mask'):
                ax.imshow(mask_picture(result.images[b], mask, fold, grid,
                                       colours, tint=sdae))
                show_grid(ax)
                if sdae:  # masked, no target: hatched (crop, drop_remainder)
                    for j in np.flatnonzero(mask & (fold < 0)):
                        ax.add_patch(_patch_rect(
                            j, grid, patch_px, fill=False, hatch='////',
                            edgecolor=(0.1, 0.1, 0.1), lw=0))
                # teacher patches not drawn as tints are outlined: the
                # visible ones of SdAE 'full', RC-MAE-D's teacher mask
                # (RC-MAE-S: the teacher's set is the student's visible one)
                if sdae:
                    outline = (fold >= 0) & ~mask
                elif result.teacher_mode == 'different':
                    outline = fold >= 0
                else:
                    outline = np.zeros_like(mask)
                for j in np.flatnonzero(outline):
                    ax.add_patch(_patch_rect(
                        j, grid, patch_px, fill=False, lw=1.3,
                        edgecolor=colours[fold[j]]))
                info = f'{int((~mask).sum())} visible / {int(mask.sum())} ' \
                       'masked'
                if sdae:
                    info += f' / {int(targets[b].sum())} targets'
                elif result.teacher_mode == 'different':
                    info += f' / {int((fold >= 0).sum())} teacher'
            elif name.startswith('cos'):
                values = result.cosine[b].numpy().reshape(grid)
                heat = ax.imshow(values, cmap=cmap, vmin=COSINE_RANGE[0],
                                 vmax=COSINE_RANGE[1])
                if grid[0] * grid[1] <= 100:
                    for (r, c), v in np.ndenumerate(values):
                        if not np.isnan(v):
                            ax.text(c, r, f'{v:.2f}', ha='center',
                                    va='center', fontsize=5)
                mean = masked_mean(result.cosine[b], targets[b])
                info = f'mean cos {mean:.3f}'
            elif name == 'reconstruction':
                ax.imshow(result.reconstruction[b])
                mse = masked_mean(result.mse[b], targets[b])
                info = f'MSE masked {mse:.3f}'
            elif name == 'reconstruction + visible':
                ax.imshow(result.reconstruction_visible[b])
                info = 'input on the visible patches'
            else:  # teacher reconstruction
                ax.imshow(result.teacher_reconstruction[b])
                mse = masked_mean(result.teacher_mse[b], targets[b])
                cons = masked_mean(result.consistency[b], targets[b])
                info = f'MSE masked {mse:.3f}, cons {cons:.3f}'
            ax.set_title(info, fontsize=6.5, pad=2)

    # header: title, legend, colour bar, column names
    title = textwrap.fill(title or result.description,
                          width=max(40, int(width / 5.2)), max_lines=2,
                          placeholder=' ...')
    fig.text(0.5, 1 - 3 / height, title, ha='center', va='top', fontsize=7.5,
             linespacing=1.2)
    for col, name in enumerate(columns):
        fig.text((col + 0.5) * PANEL_PX / width, 1 - (HEADER_PX - 4) / height,
                 name, ha='center', va='bottom', fontsize=8,
                 fontweight='bold')
    handles = [Patch(facecolor=(_MASKED_GREY, ) * 3, edgecolor='0.5',
                     label='masked (student)')]
    if sdae:
        names = {'multi_fold': 'fold', 'crop': 'teacher crop',
                 'masked': 'teacher: masked', 'full': 'teacher: full image'}
        handles = [Patch(facecolor=colours[g],
                         label=f'{names[result.teacher_mode]} {g + 1}'
                         if num_folds > 1 else names[result.teacher_mode])
                   for g in range(num_folds)]
        if (masks & (folds < 0)).any():
            handles.append(Patch(facecolor=(0.36, ) * 3, hatch='////',
                                 label='masked, no target'))
    elif result.teacher_mode == 'different':
        handles.append(Patch(facecolor='none', edgecolor=colours[0], lw=1.3,
                             label='teacher visible (RC-MAE-D)'))
    fig.legend(handles=handles, loc='upper left', ncol=min(len(handles), 4),
               fontsize=6.5, frameon=False, handlelength=1.5,
               bbox_to_anchor=(0, 1 - 28 / height))
    if heat is not None:
        col = columns.index('cos(prediction, teacher)')
        cax = fig.add_axes(((col * PANEL_PX + 30) / width,
                            1 - 62 / height, (PANEL_PX - 60) / width,
                            7 / height))
        bar = fig.colorbar(heat, cax=cax, orientation='horizontal')
        bar.ax.tick_params(labelsize=5, length=2, pad=1)
    return fig


def visualize_masking(config: str,
                      checkpoint: str,
                      images: Optional[str] = None,
                      num_images: int = 4,
                      seed: int = 0,
                      out_dir: str = osp.join('work_dirs', 'vis_masking'),
                      name: Optional[str] = None) -> Dict[str, object]:
    """Load the model, draw one batch, write ``<name>.png`` and
    ``<name>.json`` under ``out_dir`` (``name`` defaults to the config's
    file name + ``_seed<seed>``). Returns the paths and the losses."""
    from .checkpoints import load_images, normalization_of

    model = load_model(config, checkpoint)
    _, inputs = load_images(
        images=images, num_images=num_images,
        img_size=tuple(int(s) for s in model.backbone.img_size),
        seed=seed, data_preprocessor=normalization_of(model))
    result = analyze_batch(model, inputs, seed=seed)
    stem = osp.splitext(osp.basename(config))[0] if isinstance(config, str) \
        else 'model'
    name = name or f'{stem}_seed{seed}'
    os.makedirs(out_dir, exist_ok=True)
    png = osp.join(out_dir, f'{name}.png')
    js = osp.join(out_dir, f'{name}.json')
    losses = ', '.join(f'{k} {v:.4f}' for k, v in result.losses.items())
    fig = plot_result(result, title=f'{stem} | {result.description} | '
                      f'seed {seed} | {losses}')
    fig.savefig(png, dpi=DPI)
    record = result_to_json(
        result, config=config if isinstance(config, str) else None,
        checkpoint=checkpoint, seed=seed,
        image_source=images or 'procedural (ShapesGenerator, seed '
        f'{seed}, images 0..{num_images - 1})')
    with open(js, 'w') as f:
        json.dump(record, f, indent=1, allow_nan=False)
    return dict(png=png, json=js, losses=result.losses,
                description=result.description)
