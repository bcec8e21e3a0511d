# CPU smoke run of the MAE baseline: rcmae_vit-tiny-p8_1xb32-10e_procedural-64px.py
# without the EMA teacher (mmpretrain's MAE, Eq. 1 only).
_base_ = 'rcmae_vit-tiny-p8_1xb32-10e_procedural-64px.py'

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
custom_hooks = [dict(type='TrainSummaryHook'), {{_base_.knn_monitor}}]
