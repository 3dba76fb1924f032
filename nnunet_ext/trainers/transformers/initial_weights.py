"""Weights files for nnU-Net's ``-pretrained_weights`` that start a transformer trainer from elsewhere (nnU-Net 2.8's
``load_pretrained_weights`` needs every parameter of the network but the ``seg_layers`` in the file):

* :func:`write_vit_init_weights`: the trainer's freshly built network with its transformer part from a timm ViT /
  DeiT state dict (:mod:`nnunet_ext.architectures.pretrained_vit`), command ``nnunet_ext_transformer_init``;
* :func:`write_compressed_weights`: a trained transformer model's weights with the first ``N`` blocks only, for its
  ``_<N>b`` trainer, command ``nnunet_ext_compress`` (the seminar's compression: a model with fewer blocks starting
  from the full one).

Neither replaces an existing file.
"""

import os
import re
from pathlib import Path
from typing import Union

import torch

from batchgenerators.utilities.file_and_folder_operations import load_json
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_ext.architectures.pretrained_vit import vit_weights_for
from nnunet_ext.checks.model_folder import check_checkpoint_trainer, check_folds_and_checkpoint
from nnunet_ext.core.errors import IncompatibleCheckpointError, OutputFileConflictError, UserInputError

TRANSFORMER_BLOCK = re.compile(r"^transformer\.blocks\.(\d+)\.")


def _refuse_existing(output_file: Union[str, Path]) -> Path:
    output_file = Path(output_file)
    if output_file.exists():
        raise OutputFileConflictError(f"{output_file} exists.", file=output_file,
                                      fix="choose another output file (-o) or remove that one")
    return output_file


def write_vit_init_weights(dataset: str, configuration: str, trainer_name: str, vit_file: str, output_file: str,
                           plans_name: str = "nnUNetPlans") -> Path:
    output_file = _refuse_existing(output_file)
    trainer_class = recursive_find_trainer_class_by_name(trainer_name)
    if trainer_class is None or not hasattr(trainer_class, "transformer_width"):
        raise UserInputError(f"'{trainer_name}' is not a transformer trainer of nnunet_ext.",
                             fix="pass -tr with one of nnunet_ext_trainers' transformer family")
    preprocessed = Path(os.environ["nnUNet_preprocessed"]) / maybe_convert_to_dataset_name(dataset)
    plans = load_json(str(preprocessed / f"{plans_name}.json"))
    dataset_json = load_json(str(preprocessed / "dataset.json"))
    adjust = getattr(trainer_class, "plans_for_training", None)
    plans = adjust(plans, configuration) if adjust else plans
    plans_manager = PlansManager(plans)
    configuration_manager = plans_manager.get_configuration(configuration)
    network = trainer_class.build_network_architecture(
        plans_manager, configuration_manager,
        determine_num_input_channels(plans_manager, configuration_manager, dataset_json),
        plans_manager.get_label_manager(dataset_json).num_segmentation_heads, True)
    state = torch.load(vit_file, map_location="cpu", weights_only=False)
    state = state.get("model", state.get("state_dict", state)) if isinstance(state, dict) else state
    try:
        weights = vit_weights_for(network, state)
    except ValueError as error:
        raise IncompatibleCheckpointError(f"{vit_file}: {error}.", file=vit_file,
                                          fix="pass a timm ViT/DeiT state dict of the trainer's width") from error
    torch.save({"network_weights": weights, "trainer_name": trainer_name, "vit_weights": os.path.abspath(vit_file)},
               output_file)
    return output_file


def blocks_in(weights: dict) -> int:
    indices = {int(m.group(1)) for m in map(TRANSFORMER_BLOCK.match, weights) if m}
    return max(indices) + 1 if indices else 0


def write_compressed_weights(model_folder: str, blocks: int, output_file: str, fold: str = "0",
                             checkpoint_name: str = "checkpoint_final.pth") -> Path:
    """The checkpoint of ``fold`` of a trained transformer model with ``transformer.blocks.<i>`` for ``i < blocks``
    only (everything else as trained)."""
    output_file = _refuse_existing(output_file)
    model_folder = Path(model_folder)
    check_folds_and_checkpoint(model_folder, [fold], checkpoint_name)
    checkpoint_file = model_folder / f"fold_{fold}" / checkpoint_name
    weights = check_checkpoint_trainer(checkpoint_file)["network_weights"]
    depth = blocks_in(weights)
    if depth == 0:
        raise IncompatibleCheckpointError(f"{checkpoint_file} holds no transformer blocks (transformer.blocks.*).",
                                          file=checkpoint_file, fix="pass the folder of a transformer model (-i)")
    if not 0 <= blocks <= depth:
        raise UserInputError(f"-b {blocks}: the model has {depth} transformer blocks.",
                             fix=f"pass -b between 0 and {depth}")
    kept = {k: v for k, v in weights.items()
            if not (TRANSFORMER_BLOCK.match(k) and int(TRANSFORMER_BLOCK.match(k).group(1)) >= blocks)}
    if blocks == 0:  # a network without blocks has no final LayerNorm (TokenTransformer: identity)
        kept = {k: v for k, v in kept.items() if not k.startswith("transformer.norm.")}
    torch.save({"network_weights": kept, "compressed_from": str(checkpoint_file), "blocks": blocks}, output_file)
    return output_file
