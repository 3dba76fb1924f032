"""Mixin: deep supervision off, for a network without a planned decoder's per-resolution outputs (UNETR's decoder
upsamples by 2 four times, which matches nnU-Net's target scales only on some plans), as nnU-Net's Primus trainers
do: the loss is built without nnU-Net's deep-supervision wrapper and nnU-Net's toggle does nothing."""

import torch


class WithoutDeepSupervision:
    trains_with_deep_supervision = False  # what the reliability checks read to build the network as it trains

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.enable_deep_supervision = False

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        """nnU-Net switches deep supervision off for its final validation and on again: nothing to switch here."""
