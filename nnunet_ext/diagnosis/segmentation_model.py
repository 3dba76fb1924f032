"""A trained segmentation model as the segmentation part of a diagnosis network (the papers' setting: trained
first, then frozen).

The model folder is nnU-Net's (``<trainer>__<plans>__<configuration>`` with ``plans.json``, ``dataset.json`` and
``fold_<f>/checkpoint_final.pth``), trained on the same dataset with the same plans and configuration, by
``nnUNetTrainer`` or any trainer that keeps nnU-Net's planned network. Everything is checked before training starts;
each error names the file and the fix.
"""

import json
import os
from os.path import isdir, isfile, join
from typing import Optional

import torch

from nnunet_ext.core.errors import IncompatibleCheckpointError
from nnunet_ext.core.weights_check import check_weights_fit

SEGMENTATION_MODEL_VARIABLE = "NNUNET_EXT_SEGMENTATION_MODEL"
COMPARED_CONFIGURATION_ENTRIES = ("patch_size", "spacing", "normalization_schemes", "architecture")


def segmentation_model_folder(dataset_name: str, plans_name: str, configuration: str,
                              default_trainer: str, environ=None, fold=None) -> str:
    """``$NNUNET_EXT_SEGMENTATION_MODEL`` if set, else ``$nnUNet_results/<dataset>/<default_trainer>__<plans>__
    <configuration>`` (where ``nnUNetv2_train`` puts that trainer's model).

    A variable that points at a fold of the model (``.../fold_<fold>``, the folder holding the checkpoint) is taken
    as its model folder when that fold is the one being trained (``fold``); another fold is refused: its model has
    seen the validation cases of the fold being trained."""
    environ = os.environ if environ is None else environ
    given = environ.get(SEGMENTATION_MODEL_VARIABLE)
    if not given:
        return join(environ.get("nnUNet_results", ""), dataset_name,
                    f"{default_trainer}__{plans_name}__{configuration}")
    folder = os.path.normpath(given)
    name = os.path.basename(folder)
    if name.startswith("fold_") and isfile(join(os.path.dirname(folder), "plans.json")):
        if fold is not None and name != f"fold_{fold}":
            raise IncompatibleCheckpointError(
                f"{SEGMENTATION_MODEL_VARIABLE}={given} is {name} of a segmentation model, but this training is "
                f"fold {fold}: that model has seen this fold's validation cases.",
                fix=f"point {SEGMENTATION_MODEL_VARIABLE} at the model folder {os.path.dirname(folder)} (its "
                    f"fold_{fold} is then used), or train the diagnosis on {name[len('fold_'):]}")
        return os.path.dirname(folder)
    return folder


def _read_json(path: str, fix: str) -> dict:
    if not isfile(path):
        raise IncompatibleCheckpointError(f"The segmentation model has no {path}. {fix}")
    with open(path) as file:
        return json.load(file)


def check_segmentation_model(model_folder: str, plans: dict, configuration: str, dataset_json: dict,
                             trainer: str = "nnUNetTrainer") -> None:
    """Raise :class:`IncompatibleCheckpointError` when the model in ``model_folder`` was not trained on the same
    channels, labels, plans and configuration as the diagnosis trainer (``plans``, ``dataset_json``)."""
    trainer_argument = "" if trainer == "nnUNetTrainer" else f" -tr {trainer}"
    fix = (f"Train it first: nnUNetv2_train {plans['dataset_name']} {configuration} <fold> -p {plans['plans_name']}"
           f"{trainer_argument} "
           f"(or point {SEGMENTATION_MODEL_VARIABLE} at a model folder trained with these plans and configuration).")
    if not isdir(model_folder):
        raise IncompatibleCheckpointError(f"No segmentation model folder at {model_folder}. {fix}")
    theirs = _read_json(join(model_folder, "dataset.json"), fix)
    if len(theirs.get("channel_names", {})) != len(dataset_json["channel_names"]):
        raise IncompatibleCheckpointError(
            f"{join(model_folder, 'dataset.json')}: the segmentation model takes {len(theirs.get('channel_names', {}))} "
            f"input channel(s) {theirs.get('channel_names')}, this dataset has {len(dataset_json['channel_names'])} "
            f"{dataset_json['channel_names']}. Use a segmentation model of this dataset.")
    if theirs.get("labels") != dataset_json["labels"]:
        raise IncompatibleCheckpointError(
            f"{join(model_folder, 'dataset.json')}: the segmentation model's labels {theirs.get('labels')} differ from "
            f"this dataset's {dataset_json['labels']}. Use a segmentation model of this dataset.")
    their_plans = _read_json(join(model_folder, "plans.json"), fix)
    their_configuration = their_plans.get("configurations", {}).get(configuration)
    if their_configuration is None:
        raise IncompatibleCheckpointError(
            f"{join(model_folder, 'plans.json')} has no configuration '{configuration}'. {fix}")
    ours = plans["configurations"][configuration]
    for entry in COMPARED_CONFIGURATION_ENTRIES:
        if their_configuration.get(entry) != ours.get(entry):
            raise IncompatibleCheckpointError(
                f"{join(model_folder, 'plans.json')}: configuration '{configuration}' has {entry} "
                f"{their_configuration.get(entry)!r}, the diagnosis trainer's plans '{plans['plans_name']}' have "
                f"{ours.get(entry)!r}. {fix}")


def fold_checkpoint(model_folder: str, fold, checkpoint_name: str = "checkpoint_final.pth") -> str:
    """``<model_folder>/fold_<fold>/<checkpoint_name>``; a clear error when that training has not finished."""
    path = join(model_folder, f"fold_{fold}", checkpoint_name)
    if not isfile(path):
        raise IncompatibleCheckpointError(
            f"No {path}: the segmentation model has no finished training for fold {fold}. Train that fold first "
            f"(nnUNetv2_train ... {fold}), or use the fold it was trained on.")
    return path


def load_segmentation_weights(network, path: str, expected_trainer: str = "nnUNetTrainer") -> str:
    """Fill the segmentation part (every parameter outside ``diagnosis.*``) of ``network`` from the nnU-Net
    checkpoint ``path``. The checkpoint must hold exactly those parameters, in those shapes: a model of a trainer
    that builds the network ``expected_trainer`` builds."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    weights = checkpoint["network_weights"]
    ours = network.state_dict()
    segmentation_part = {k: v for k, v in ours.items() if not k.startswith("diagnosis.")}
    check_weights_fit(segmentation_part, weights, f"{expected_trainer}'s network for these plans",
                      source=f"The weights in {path} (trainer {checkpoint.get('trainer_name')})",
                      other_architecture=f"another architecture; use a segmentation model trained by "
                                         f"{expected_trainer} (or a trainer that keeps its network) with the same "
                                         f"plans and configuration, or the diagnosis trainer variant made for "
                                         f"{checkpoint.get('trainer_name')}'s network")
    ours.update({k: weights[k] for k in segmentation_part})
    network.load_state_dict(ours)
    return path


def load_segmentation_model(network, plans: dict, configuration: str, dataset_json: dict, fold,
                            default_trainer: str, freeze: bool, environ: Optional[dict] = None) -> str:
    """Check and load the segmentation model into ``network`` (a ``SegmentationAssistedDiagnosisNetwork``), and
    freeze its segmentation part when ``freeze``. Returns the checkpoint's path."""
    folder = segmentation_model_folder(plans["dataset_name"], plans["plans_name"], configuration, default_trainer,
                                       environ, fold)
    check_segmentation_model(folder, plans, configuration, dataset_json, default_trainer)
    path = load_segmentation_weights(network, fold_checkpoint(folder, fold), default_trainer)
    if freeze:
        network.freeze_segmentation()
    return path
