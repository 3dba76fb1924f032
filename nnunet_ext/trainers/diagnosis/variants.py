"""How the segmentation part of a diagnosis trainer starts, and how the diagnosis reaches it, as generated variants
of the registered trainers (``@register_trainer(..., variants=(FROZEN_SEGMENTATION,))`` gives
``<Name>_FrozenSegmentation`` and its ``_Short``). The frozen and pretrained variants need a trained segmentation
model (see ``nnunet_ext.diagnosis.segmentation_model``).

The frozen variants of SeATrans and SiAN train their branch with the paper's optimiser
(:mod:`nnunet_ext.trainers.diagnosis.paper_optimizers`); SiAN's branch can also sit on a trained L-Net
(``_FrozenLNetSegmentation``, the paper's setting) or Div-attention model (``_FrozenDivAttentionSegmentation``).
``_FrozenSegmentationNnUNetSGD`` trains the same frozen-segmentation branch with nnU-Net's optimiser instead.
"""

from typing import Tuple

from nnunet_ext.trainers.diagnosis.paper_optimizers import SeATransPaperOptimizer, SiANPaperOptimizer
from nnunet_ext.trainers.registry import TrainerVariant

NEEDS_SEGMENTATION_MODEL = frozenset({"needs_segmentation_model"})
FROZEN = {"start_from_segmentation_model": True, "freeze_segmentation": True}


def frozen_segmentation(suffix: str = "_FrozenSegmentation", mixins: Tuple[type, ...] = (),
                        segmentation_model_trainer: str = "nnUNetTrainer", summary: str = "") -> TrainerVariant:
    """A variant whose segmentation part is ``segmentation_model_trainer``'s trained model, frozen."""
    model = "a trained segmentation model" if segmentation_model_trainer == "nnUNetTrainer" else \
        f"a trained {segmentation_model_trainer} model"
    text = f"segmentation part loaded from {model} and frozen, only the branch trains (the papers' setting)"
    return TrainerVariant(suffix, text + (f"; {summary}" if summary else ""), mixins=mixins,
                          attributes={**FROZEN, "segmentation_model_trainer": segmentation_model_trainer},
                          tags=NEEDS_SEGMENTATION_MODEL,
                          builds_own_network=segmentation_model_trainer != "nnUNetTrainer")


FROZEN_SEGMENTATION = frozen_segmentation()
FROZEN_SEGMENTATION_NNUNET_SGD = frozen_segmentation(
    "_FrozenSegmentationNnUNetSGD", summary="nnU-Net's SGD (1e-2, momentum 0.99, poly) instead of the paper's "
                                            "optimiser, the comparison that chose the default")
FROZEN_SEGMENTATION_ADAM = frozen_segmentation(mixins=(SeATransPaperOptimizer,),
                                               summary="Adam at 1e-4 (SeATrans sec. 3.1)")
SIAN_OPTIMIZER = "SGD at 1e-3, momentum 0.95, divided by 10 after 4 epochs without a better score (SiAN sec. 4.1)"
FROZEN_SEGMENTATION_SIAN = frozen_segmentation(mixins=(SiANPaperOptimizer,), summary=SIAN_OPTIMIZER)
FROZEN_LNET_SEGMENTATION = frozen_segmentation("_FrozenLNetSegmentation", (SiANPaperOptimizer,), "LNetTrainer",
                                               SIAN_OPTIMIZER)
FROZEN_DIV_ATTENTION_SEGMENTATION = frozen_segmentation("_FrozenDivAttentionSegmentation", (SiANPaperOptimizer,),
                                                        "DivAttentionTrainer", SIAN_OPTIMIZER)

PRETRAINED_SEGMENTATION = TrainerVariant(
    "_PretrainedSegmentation", "segmentation part loaded from a trained segmentation model and trained further "
                               "with the branch",
    attributes={"start_from_segmentation_model": True, "freeze_segmentation": False}, tags=NEEDS_SEGMENTATION_MODEL)

COUPLED_PROBABILITIES = TrainerVariant(
    "_CoupledProbabilities", "joint training in which the diagnosis loss also trains the segmentation through its "
                             "probabilities (not the papers' form)",
    attributes={"diagnosis_probabilities_gradient": True})
