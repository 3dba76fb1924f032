"""Mixin: the network takes one more input channel than the dataset has, the click cue (last channel). nnU-Net's
trainer and predictor both pass the dataset's channel count to ``build_network_architecture``; the mixin adds the
cue's, so the trainer, ``nnUNetv2_predict``'s rebuild from the checkpoint and the checks all build the same network
(``added_input_channels`` tells the checks to feed it one channel more).

A 2D configuration of 3D images cannot be built: its patches are slices, each with a click of its own in training,
while a user clicks a 3D point that lies on one slice (the other slices would be predicted as if no target were
there)."""

from torch import nn

from nnunet_ext.core.errors import UnsupportedConfigurationError


def check_click_configuration(plans: dict, patch_size) -> None:
    shape = plans.get("original_median_shape_after_transp")
    if len(patch_size) == 2 and shape is not None and len(shape) == 3 and shape[0] > 1:
        raise UnsupportedConfigurationError(
            "A click-guided network cannot be built for a 2D configuration of 3D images: a click is a 3D point on "
            "one slice, while 2D training gives every slice a click of its own.",
            fix="train the 3d_fullres configuration (or a 2D dataset's 2d configuration)")


class ClickCueChannel:
    added_input_channels = 1

    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True) -> nn.Module:
        check_click_configuration(plans_manager.plans, configuration_manager.patch_size)
        return super().build_network_architecture(plans_manager, configuration_manager,
                                                   num_input_channels + cls.added_input_channels,
                                                   num_output_channels, enable_deep_supervision)
