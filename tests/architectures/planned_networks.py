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
