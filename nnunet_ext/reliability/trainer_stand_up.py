"""A trainer as ``nnUNetTrainer.initialize`` leaves it (network, optimiser, learning-rate schedule, loss), without a
preprocessed dataset: what a check needs to run the trainer's own ``train_step`` on generated batches.

``initialize`` also infers the dataset class from the preprocessed folder, and (with a process group) moves the
trainer to CUDA, converts BatchNorm to SyncBatchNorm and wraps the network in DDP; the checks do the wrapping
themselves, on the CPU. A diagnosis trainer gets labels for the generated batches' case ids; a trainer that starts
from a trained segmentation model loads it in ``configure_optimizers``, from ``$NNUNET_EXT_SEGMENTATION_MODEL``
(:func:`write_untrained_segmentation_model` writes a folder of the right shape).
"""

import copy
import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch
from torch.nn import functional as F

from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.diagnosis.labels import DiagnosisLabels
from nnunet_ext.reliability.network_builds import PLAIN_NNUNET, NetworkSetting, build_network, trainer_class
from nnunet_ext.reliability.tiny_plans import DIAGNOSIS_CLASSES

BATCH_KEYS = ("case_0", "case_1")  # the generated batches' case ids (class 0 and class 1 of a diagnosis)


def stand_up_trainer(trainer: str, setting: NetworkSetting, device: torch.device = torch.device("cpu"), seed: int = 0):
    """``trainer`` constructed on ``setting`` (nnU-Net's ``nnUNet_results`` must point at a writable folder) with
    the network, optimiser and loss that ``initialize`` would give it."""
    plans = copy.deepcopy(setting.plans)
    plans["continue_training"] = False  # nnUNetTrainer.__init__ pops it (nnUNetv2_train sets it)
    instance = trainer_class(trainer)(plans, setting.configuration, 0, setting.dataset_json, device)
    instance.num_input_channels = setting.dataset_input_channels
    instance.network = build_network(trainer, setting, instance.enable_deep_supervision, seed).to(device)
    if hasattr(instance, "diagnosis_method"):
        instance.diagnosis_labels = DiagnosisLabels(
            classes=list(DIAGNOSIS_CLASSES), ordinal=False, labels={k: i % 2 for i, k in enumerate(BATCH_KEYS)},
            source=Path("<generated batches>"))
    instance.optimizer, instance.lr_scheduler = instance.configure_optimizers()
    instance.loss = instance._build_loss()
    instance.was_initialized = True
    return instance


def set_lowest_deep_supervision_weight(loss: torch.nn.Module, weight: float) -> int:
    """Set the weight of the lowest-resolution output in every ``DeepSupervisionWrapper`` inside ``loss`` (nnU-Net
    uses 0, or 1e-6 under DDP without compile). Returns how many wrappers were changed."""
    wrappers = [m for m in loss.modules() if isinstance(m, DeepSupervisionWrapper)]
    for wrapper in wrappers:
        wrapper.weight_factors = (*wrapper.weight_factors[:-1], float(weight))
    return len(wrappers)


def generated_batch(trainer, setting: NetworkSetting, seed: int, batch_size: int = len(BATCH_KEYS)) -> dict:
    """A batch as nnU-Net's data loader gives it: ``data [B, C, *patch]``, ``target`` one ``[B, 1, *scale]`` label
    map per deep-supervision scale (nearest-neighbour downsampled from the full-resolution labels), ``keys``."""
    generator = torch.Generator().manual_seed(seed)
    patch = tuple(trainer.configuration_manager.patch_size)  # the trainer's (a transformer rounds the plans')
    data = torch.randn(batch_size, setting.dataset_input_channels, *patch, generator=generator)  # the loader's
    labels = torch.randint(0, setting.num_outputs, (batch_size, 1, *patch), generator=generator).float()
    scales = trainer._get_deep_supervision_scales() if trainer.enable_deep_supervision else None
    if scales is None:
        target = labels
    else:
        target = [F.interpolate(labels, size=[max(1, round(p * s)) for p, s in zip(patch, scale)], mode="nearest")
                  for scale in scales]
    return {"data": data, "target": target, "keys": list(BATCH_KEYS[:batch_size])}


def batch_for_network(trainer, batch: dict) -> dict:
    """``batch`` as ``trainer``'s ``train_step`` hands it to the network (a click-guided trainer adds the cue
    channel, ``batch_for_network``); unchanged for the others."""
    prepare = getattr(trainer, "batch_for_network", None)
    return batch if prepare is None else prepare(batch)


def segmentation_model_trainer_of(trainer: str) -> str:
    """The trainer whose model a diagnosis ``trainer`` starts from (``nnUNetTrainer``, or e.g. ``LNetTrainer``)."""
    return getattr(trainer_class(trainer), "segmentation_model_trainer", PLAIN_NNUNET)


def write_untrained_segmentation_model(folder: Path, setting: NetworkSetting, fold: int = 0,
                                       segmentation_trainer: str = PLAIN_NNUNET) -> Path:
    """A model folder as ``nnUNetv2_train`` writes it (plans.json, dataset.json, ``fold_<fold>/checkpoint_final.pth``)
    holding ``segmentation_trainer``'s network for ``setting`` (nnU-Net's planned network by default), freshly
    initialised: what a ``_FrozenSegmentation`` trainer loads, of the right shapes."""
    folder = Path(folder)
    network = build_network(segmentation_trainer, setting)
    (folder / f"fold_{fold}").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(setting.plans))
    (folder / "dataset.json").write_text(json.dumps(setting.dataset_json))
    torch.save({"network_weights": network.state_dict(), "trainer_name": segmentation_trainer},
               folder / f"fold_{fold}" / "checkpoint_final.pth")
    return folder


def segmentation_models_for(trainers: Sequence[str], settings: Dict[str, NetworkSetting], work_dir: Path
                            ) -> Dict[Tuple[str, str], Path]:
    """``{(setting key, segmentation trainer): model folder}`` for every segmentation trainer that ``trainers``
    start from; a network the plans cannot carry gets no folder (the diagnosis trainer is refused there too)."""
    models = {}
    for segmentation_trainer in sorted({segmentation_model_trainer_of(t) for t in trainers} | {PLAIN_NNUNET}):
        for key, setting in settings.items():
            try:
                models[key, segmentation_trainer] = write_untrained_segmentation_model(
                    Path(work_dir) / f"segmentation_{key}_{segmentation_trainer}", setting,
                    segmentation_trainer=segmentation_trainer)
            except UnsupportedConfigurationError:
                continue
    return models


def segmentation_parameter_names(network: torch.nn.Module) -> List[str]:
    """Names of a diagnosis network's segmentation-part parameters (everything outside ``diagnosis.*``)."""
    return [name for name, _ in network.named_parameters() if not name.startswith("diagnosis.")]


def parameters_snapshot(network: torch.nn.Module, names: Sequence[str] = ()) -> Dict[str, torch.Tensor]:
    parameters = dict(network.named_parameters())
    return {name: parameters[name].detach().clone() for name in (names or parameters)}
