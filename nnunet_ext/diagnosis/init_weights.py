"""Diagnosis init weights: a weights file for nnU-Net's own ``-pretrained_weights`` that starts a diagnosis trainer
from a trained segmentation model (written by the command ``nnunet_ext_diagnosis_init``).

nnU-Net 2.8's ``load_pretrained_weights`` requires every parameter of the network being trained (but the
``seg_layers``) to be in the file, so a segmentation checkpoint alone cannot initialise a network that also has a
diagnosis branch. The diagnosis networks keep nnU-Net's names for their segmentation part (``encoder.*``,
``decoder.*``); this command builds the diagnosis trainer's network from the preprocessed plans and the dataset's
diagnosis labels, fills that part by name from the segmentation checkpoint (with the checks of
:mod:`nnunet_ext.diagnosis.segmentation_model`), leaves the branch freshly initialised, and saves the result::

    nnunet_ext_diagnosis_init -d 504 -c 2d -tr SiANDiagnosisTrainer -i <seg model>/fold_0/checkpoint_final.pth -o init.pth
    nnUNetv2_train 504 2d 0 -tr SiANDiagnosisTrainer -pretrained_weights init.pth

(nnU-Net does not transfer ``seg_layers``: the segmentation heads start afresh, as nnU-Net intends for
fine-tuning.) The ``*_FrozenSegmentation`` trainers need none of this: they load and freeze the model themselves.
"""

import os
from os.path import isfile, join

import torch

from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.diagnosis.dataset_labels import load_dataset_diagnosis_labels
from nnunet_ext.diagnosis.plans_entry import add_diagnosis_settings
from nnunet_ext.diagnosis.segmentation_model import check_segmentation_model, load_segmentation_weights


def write_diagnosis_init_weights(dataset: str, configuration: str, trainer_name: str, segmentation_checkpoint: str,
                                 output_file: str, plans_name: str = "nnUNetPlans") -> str:
    """Write ``output_file`` (refusing to replace an existing file) and return its path."""
    if isfile(output_file):
        raise FileExistsError(f"{output_file} exists; choose another output file or remove it.")
    dataset_name = maybe_convert_to_dataset_name(dataset)
    preprocessed = join(os.environ["nnUNet_preprocessed"], dataset_name)
    plans = load_json(join(preprocessed, f"{plans_name}.json"))
    dataset_json = load_json(join(preprocessed, "dataset.json"))
    model_folder = os.path.dirname(os.path.dirname(os.path.abspath(segmentation_checkpoint)))
    check_segmentation_model(model_folder, plans, configuration, dataset_json)
    plans_manager = PlansManager(plans)
    configuration_manager = plans_manager.get_configuration(configuration)
    label_manager = plans_manager.get_label_manager(dataset_json)
    labels = load_dataset_diagnosis_labels(dataset_name, preprocessed,
                                           join(preprocessed, configuration_manager.data_identifier),
                                           dataset_json["file_ending"])
    add_diagnosis_settings(plans, labels, segmentation_softmax=not label_manager.has_regions)
    trainer_class = recursive_find_trainer_class_by_name(trainer_name)
    if trainer_class is None or not hasattr(trainer_class, "diagnosis_method"):
        raise ValueError(f"'{trainer_name}' is not a diagnosis trainer of nnunet_ext (e.g. SiANDiagnosisTrainer).")
    network = trainer_class.build_network_architecture(
        plans_manager, configuration_manager,
        determine_num_input_channels(plans_manager, configuration_manager, dataset_json),
        label_manager.num_segmentation_heads, True)
    load_segmentation_weights(network, segmentation_checkpoint)
    torch.save({"network_weights": network.state_dict(), "trainer_name": trainer_name,
                "segmentation_checkpoint": os.path.abspath(segmentation_checkpoint)}, output_file)
    return output_file
