# COCO Cascade Mask R-CNN 1x for the Hybrid Distill ViT-B/16 encoders
# (appendix A.2, Table A2; appendix C: "1x results using the Cascade
# Mask-RCNN framework ... learning rate 3e-4"): the Mask R-CNN config of the
# paper's Table 1 (configs/sdae/benchmarks/mask-rcnn_vit-base-p16_fpn_8xb4-
# 1x_coco.py, CAE's setting: blocks 4/6/8/12 into the deconvolution pyramid
# + FPN, layer decay 0.75, AdamW lr 3e-4, 12 epochs, batch 32, CAE's crop
# augmentation) with its RoI head made a three-stage cascade (Cai &
# Vasconcelos 2018): each stage the Mask R-CNN's 4 conv + 1 fc SyncBN head
# regressing decoded boxes with GIoU (weight 10), class-specific, trained at
# IoU 0.5 / 0.6 / 0.7 with delta stds 0.1-0.2 / 0.05-0.1 / 0.033-0.067 and
# loss weights 1 / 0.5 / 0.25; one 4-conv mask head. The appendix names
# only the framework: the stage heads are a choice, those of Swin's
# "giou_4conv1f" Cascade Mask R-CNN configs (the Mask R-CNN's head in each
# stage). Paper (300 epochs): 53.0 box AP / 45.6 mask AP (MAE + DeiT
# teachers), 53.4 / 45.9 (MAE + CLIP). Every value and its source:
# configs/hybrid_distill/README.md.
#
#   bash tools/dist_train.sh <this config> 8 --cfg-options \
#       model.backbone.init_cfg.checkpoint=<encoder exported by
#       tools/model_converters/sdae_to_vit.py>
_base_ = '../../sdae/benchmarks/mask-rcnn_vit-base-p16_fpn_8xb4-1x_coco.py'

_roi = _base_.model.roi_head
_rcnn = _base_.model.train_cfg.rcnn
stage_ious = (0.5, 0.6, 0.7)
stage_stds = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
              [0.033, 0.033, 0.067, 0.067])
model = dict(
    type='CascadeRCNN',
    roi_head=dict(
        _delete_=True,
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=_roi.bbox_roi_extractor,
        bbox_head=[
            dict(
                _roi.bbox_head,
                reg_class_agnostic=False,
                bbox_coder=dict(_roi.bbox_head.bbox_coder, target_stds=stds))
            for stds in stage_stds
        ],
        mask_roi_extractor=_roi.mask_roi_extractor,
        mask_head=_roi.mask_head),
    train_cfg=dict(rcnn=[
        dict(
            _rcnn,
            assigner=dict(
                _rcnn.assigner,
                pos_iou_thr=iou,
                neg_iou_thr=iou,
                min_pos_iou=iou,
                match_low_quality=False)) for iou in stage_ious
    ]))
