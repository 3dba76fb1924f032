"""The ``_Tiny`` variant of the transformer trainers: the same network and depth at 64 channels and 4 heads, so that
it trains on a CPU in tests (the full-width trainers are tagged ``full_width``; the registry-driven reliability
checks build their ``_Tiny`` variants, whose code is the same)."""

from nnunet_ext.trainers.registry import TrainerVariant

TINY_WIDTH = TrainerVariant("_Tiny", "64 wide, 4 heads (CPU tests)",
                            attributes={"transformer_width": 64, "transformer_heads": 4},
                            tags=frozenset({"tiny"}))
