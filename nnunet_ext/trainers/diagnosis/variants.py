"""How the segmentation part of a diagnosis trainer starts, as generated variants of the registered trainers
(``@register_trainer(..., variants=(FROZEN_SEGMENTATION,))`` gives ``<Name>_FrozenSegmentation`` and its
``_Short``). Both need a trained segmentation model (see ``nnunet_ext.diagnosis.segmentation_model``)."""

from nnunet_ext.trainers.registry import TrainerVariant

NEEDS_SEGMENTATION_MODEL = frozenset({"needs_segmentation_model"})

FROZEN_SEGMENTATION = TrainerVariant(
    "_FrozenSegmentation", "segmentation part loaded from a trained segmentation model and frozen, only the branch "
                           "trains (the papers' setting)",
    attributes={"start_from_segmentation_model": True, "freeze_segmentation": True}, tags=NEEDS_SEGMENTATION_MODEL)

PRETRAINED_SEGMENTATION = TrainerVariant(
    "_PretrainedSegmentation", "segmentation part loaded from a trained segmentation model and trained further "
                               "with the branch",
    attributes={"start_from_segmentation_model": True, "freeze_segmentation": False}, tags=NEEDS_SEGMENTATION_MODEL)
