"""``DivAttentionUNETRTrainer``: UNETR (12 blocks, ViT-B) with Div-attention at its four decoder junctions
(:mod:`nnunet_ext.architectures.div_attention_unetr`), the Div-attention paper's best configuration; ``_Tiny``
variant for CPUs.

Deep supervision: nnU-Net's, on the four refined paths at 1, 1/2, 1/4, 1/8 (the lowest weighted 0 by nnU-Net: "every
path but the lowest"). The Div-attention options are ``DivAttentionTrainer``'s class attributes with its defaults
(the divergence map, sigmoid masks, the residual). The plans' patch is rounded up to a multiple of 16
(:class:`TokenPatch`)."""

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunet_ext.trainers.checkpoint_origin import CheckpointOriginCheck
from nnunet_ext.trainers.network_builders.div_attention_unetr import build_div_attention_unetr
from nnunet_ext.trainers.registry import register_trainer
from nnunet_ext.trainers.transformers.tiny_width import TINY_WIDTH
from nnunet_ext.trainers.transformers.token_patch import TokenPatch
from nnunet_ext.trainers.transformers.transformer_optimizer import TransformerOptimizer
from nnunet_ext.trainers.transformers.unetr_trainers import UNETRArchitecture

PATH_SCALES = (1.0, 0.5, 0.25, 0.125)  # UNETR's decoder paths, full resolution first


class DivAttentionUNETRArchitecture(UNETRArchitecture):
    """Mixin: the network and its four deep-supervision target scales (the two go together)."""

    network_builder = staticmethod(build_div_attention_unetr)
    div_attention_map, div_attention_masks, div_attention_residual = "divergence", "sigmoid", True

    @classmethod
    def network_options(cls) -> dict:
        return {**super().network_options(), "attention": cls.div_attention_map, "masks": cls.div_attention_masks,
                "residual": cls.div_attention_residual}

    def _get_deep_supervision_scales(self):
        if not self.enable_deep_supervision:
            return None
        return [[scale] * len(self.configuration_manager.patch_size) for scale in PATH_SCALES]


@register_trainer("transformer", "UNETR with Div-attention at its decoder junctions (the Div-attention paper's "
                                 "best configuration)", variants=(TINY_WIDTH,), tags=("full_width",))
class DivAttentionUNETRTrainer(TransformerOptimizer, TokenPatch, DivAttentionUNETRArchitecture, CheckpointOriginCheck,
                               nnUNetTrainer):
    """UNETR, 12 blocks, with Div-attention junctions."""
