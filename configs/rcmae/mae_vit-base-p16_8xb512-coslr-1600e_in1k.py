# MAE baseline of rcmae_vit-base-p16_8xb512-coslr-1600e_in1k.py: the same
# encoder, decoder, data, optimizer and schedule without the EMA teacher
# (mmpretrain's MAE: the reconstruction loss of Eq. 1 only), for the RC-MAE
# paper's comparison. Paper (Table 4, their MAE run): fine-tuning 83.4.
_base_ = 'rcmae_vit-base-p16_8xb512-coslr-1600e_in1k.py'

model = dict(
    _delete_=True,
    type='MAE',
    backbone=dict(_base_.model.backbone, type='MAEViT'),
    neck=_base_.model.neck,
    head=dict(
        type='MAEPretrainHead',
        norm_pix=_base_.model.head.norm_pix,
        patch_size=_base_.model.head.patch_size,
        loss=_base_.model.head.loss),
    init_cfg=_base_.model.init_cfg)
custom_hooks = [dict(type='TrainSummaryHook')]
