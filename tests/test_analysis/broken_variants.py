"""Deliberately broken pre-training variants: fixtures of the learning
regression test (test_learning_signal.py), which must score them below its
margin. Importing this module registers them (test process only)."""
from mmpretrain.models.selfsup import MAE
from mmpretrain.registry import MODELS

MAE_CONFIG = 'configs/rcmae/mae_vit-tiny-p8_1xb32-10e_procedural-64px.py'
SDAE_CONFIG = 'configs/sdae/sdae_vit-tiny-p8_1xb32-10e_procedural-64px.py'


@MODELS.register_module(force=True)
class VisiblePatchTargetMAE(MAE):
    """MAE whose loss is taken on the *visible* patches (``1 - mask``):
    the target leaks into the input, so reconstruction is a copy and
    nothing has to be inferred (MAE Eq. 1 averages over the masked ones)."""

    def loss(self, inputs, data_samples, **kwargs):
        latent, mask, ids_restore = self.backbone(inputs)
        pred = self.neck(latent, ids_restore)
        return dict(loss=self.head.loss(pred, inputs, 1.0 - mask))


# label -> learning_signal.run(variants=...) entry
BROKEN_VARIANTS = {
    # SdAE without its EMA hook: the teacher is never updated and stays the
    # random initial student (SdAE Eq. 7 never applied)
    'SdAE, teacher never updated': dict(
        config=SDAE_CONFIG, drop_hooks=('SdAETeacherEMAHook', )),
    # MAE reconstructing the patches it sees
    'MAE, target = visible patches': dict(
        config=MAE_CONFIG,
        cfg_options={'model.type': 'VisiblePatchTargetMAE'}),
}
