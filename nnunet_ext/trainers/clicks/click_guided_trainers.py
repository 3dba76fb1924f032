"""Stage 1 of Div-attention's pipeline (Jiang et al., "Pipeline": "We introduce the one-click information randomly
generated within the mask of target lesion or organ in the form of distance transform image to the input in Stage
1"): nnU-Net's trainer, and the Div-attention trainer, with the click cue as one more input channel.

Training draws one click per patch (:mod:`click_cue_batches`), nnU-Net's final validation clicks once in each
reference component (:mod:`click_cue_final_validation`), and ``nnunet_ext_predict --clicks`` (or
``--simulated_clicks``) predicts new cases (:mod:`nnunet_ext.clicks.prediction_cue`). The paper's Stage 1 network is
an mUnet; ours is nnU-Net's planned U-Net (or the Div-attention U-Net)."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.clicks.click_cue_batches import ClickCueBatches
from nnunet_ext.trainers.clicks.click_cue_channel import ClickCueChannel
from nnunet_ext.trainers.clicks.click_cue_final_validation import ClickCueFinalValidation
from nnunet_ext.trainers.clicks.click_cue_settings import ClickCueSettings
from nnunet_ext.trainers.div_attention_trainer import DivAttentionTrainer
from nnunet_ext.trainers.registry import register_trainer


NEEDS_CLICKS = ("needs_clicks",)  # predicted by nnunet_ext_predict --clicks / --simulated_clicks, not the stock command


@register_trainer("coarse_to_fine", "Stage 1: nnU-Net's trainer with one more input channel, the cue of a click "
                                    "inside the target (distance in mm, clipped and scaled)", dimensions=(2, 3),
                  tags=NEEDS_CLICKS, e2e_configuration="3d_fullres")
class ClickGuidedTrainer(ClickCueFinalValidation, ClickCueBatches, ClickCueChannel, ClickCueSettings,
                         CheckpointOriginCheck, nnUNetTrainer):
    """nnU-Net's U-Net and training, and the click cue."""


@register_trainer("coarse_to_fine", "Stage 1 with Div-attention: the Div-attention U-Net with the click cue channel",
                  dimensions=(2, 3), tags=NEEDS_CLICKS)
class ClickGuidedDivAttentionTrainer(ClickCueFinalValidation, ClickCueBatches, ClickCueChannel, ClickCueSettings,
                                     DivAttentionTrainer):
    """``DivAttentionTrainer`` and the click cue."""
