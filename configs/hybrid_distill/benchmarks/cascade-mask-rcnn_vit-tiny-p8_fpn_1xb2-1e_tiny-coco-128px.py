# CPU-sized variant of cascade-mask-rcnn_vit-base-p16_fpn_8xb4-1x_coco.py:
# the tiny COCO Mask R-CNN (configs/sdae/benchmarks/mask-rcnn_vit-tiny-p8_
# fpn_1xb2-1e_tiny-coco-128px.py: the demo's 96 x 4 ViT, 128 px, 64-channel
# heads, one epoch) with its RoI head made the same three-stage cascade
# (IoU 0.5 / 0.6 / 0.7, delta stds, loss weights 1 / 0.5 / 0.25, each stage
# the base's 4 conv + 1 fc GIoU head).
_base_ = ('../../sdae/benchmarks/'
          'mask-rcnn_vit-tiny-p8_fpn_1xb2-1e_tiny-coco-128px.py')

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
