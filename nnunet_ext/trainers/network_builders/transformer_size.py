"""The size of a transformer part, as the transformer trainers' class attributes set it."""

from dataclasses import dataclass

from nnunet_ext.architectures.building_blocks.token_grid import DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class TransformerSize:
    """ViT-B by default (768 wide, 12 blocks, 12 heads, MLP ratio 4: the papers' encoders); ``token_size`` is the
    edge of the input patches that UNETR, CATS and TransFuse embed (TransUNet embeds the CNN's stride-16 features
    as 1x1 patches instead); ``max_tokens`` bounds the token grid a patch may give."""

    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    token_size: int = 16
    max_tokens: int = DEFAULT_MAX_TOKENS

    @classmethod
    def of_trainer(cls, trainer_class: type) -> "TransformerSize":
        """The size a trainer class sets by its ``transformer_*`` attributes (defaults where absent)."""
        names = ("width", "depth", "heads", "mlp_ratio", "token_size", "max_tokens")
        return cls(**{name: getattr(trainer_class, f"transformer_{name}") for name in names
                      if hasattr(trainer_class, f"transformer_{name}")})
