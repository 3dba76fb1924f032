"""What the network tests share: nnU-Net's trainer and predictor's way of building a trainer's network from real
plans, and nnU-Net's own deep-supervision scales and loss to train it with."""

from types import SimpleNamespace

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

PLANS_AND_CONFIGURATIONS = [("nnUNetPlans", "2d"), ("nnUNetPlans", "3d_fullres"),
                            ("nnUNetResEncUNetMPlans", "2d"), ("nnUNetResEncUNetMPlans", "3d_fullres")]


def build(plans, dataset_json, configuration, deep_supervision=True, trainer=nnUNetTrainer):
    """What nnU-Net's trainer and predictor do: (network, configuration manager, label manager)."""
    plans_manager = PlansManager(plans)
    configuration_manager = plans_manager.get_configuration(configuration)
    label_manager = plans_manager.get_label_manager(dataset_json)
    num_inputs = determine_num_input_channels(plans_manager, configuration_manager, dataset_json)
    network = trainer.build_network_architecture(plans_manager, configuration_manager, num_inputs,
                                                 label_manager.num_segmentation_heads, deep_supervision)
    return network, configuration_manager, label_manager


def nnunet_training_parts(configuration_manager, label_manager):
    """nnU-Net's own deep-supervision scales and loss (nnUNetTrainer's methods, run on the few attributes they
    read), so that tests check against nnU-Net's code rather than a copy of it."""
    state = SimpleNamespace(enable_deep_supervision=True, configuration_manager=configuration_manager,
                            label_manager=label_manager, is_ddp=False, _do_i_compile=lambda: False)
    state._get_deep_supervision_scales = lambda: nnUNetTrainer._get_deep_supervision_scales(state)
    return state._get_deep_supervision_scales(), nnUNetTrainer._build_loss(state)


def small_unet_plans(patch_size, strides, network: str = "PlainConvUNet") -> PlansManager:
    """nnU-Net plans of one configuration 'c': a U-Net of small widths with ``strides`` on ``patch_size``."""
    ndim, stages = len(patch_size), len(strides)
    kwargs = {
        "n_stages": stages, "features_per_stage": [min(4 * 2 ** i, 16) for i in range(stages)],
        "conv_op": f"torch.nn.modules.conv.Conv{ndim}d", "kernel_sizes": [[3] * ndim] * stages,
        "strides": strides, "n_conv_per_stage_decoder": [1] * (stages - 1),
        "conv_bias": True, "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{ndim}d",
        "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}
    # the per-stage conv count, under the name each network class takes
    kwargs["n_blocks_per_stage" if network == "ResidualEncoderUNet" else "n_conv_per_stage"] = [1] * stages
    module = "dynamic_network_architectures.architectures.unet"
    return PlansManager({"configurations": {"c": {
        "data_identifier": "test_c", "patch_size": list(patch_size),
        "architecture": {"network_class_name": f"{module}.{network}", "arch_kwargs": kwargs,
                         "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}}}})
