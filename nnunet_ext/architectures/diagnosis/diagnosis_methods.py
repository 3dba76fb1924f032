"""Which diagnosis branch each method name builds. Names follow the papers: ``image_only`` (the classifier without
mask), ``base_multi``, ``base_cat`` and ``base_roi`` (SeATrans' baselines, sec. 3.2), ``sian`` and
``sian_cw_maxpool`` (SiAN, sec. 3.2: learned weight maps, eq. 7, or CW-MaxPool, eq. 6) and ``seatrans``
(SeA-blocks, sec. 2)."""

from typing import Callable, Dict, Sequence

from torch import nn

from nnunet_ext.architectures.diagnosis.bottleneck_branch import BottleneckDiagnosisBranch
from nnunet_ext.architectures.diagnosis.cnn_branch import CNNDiagnosisBranch
from nnunet_ext.architectures.diagnosis.roi_branch import ROIDiagnosisBranch
from nnunet_ext.architectures.diagnosis.seatrans_branch import SeATransDiagnosisBranch
from nnunet_ext.architectures.diagnosis.sian_branch import SiANDiagnosisBranch


def _image_only(encoder, image_channels, segmentation_channels, num_outputs, patch_size, softmax):
    return CNNDiagnosisBranch(encoder, image_channels, num_outputs)


def _base_multi(encoder, image_channels, segmentation_channels, num_outputs, patch_size, softmax):
    return BottleneckDiagnosisBranch(encoder.output_channels[-1], num_outputs)


def _base_cat(encoder, image_channels, segmentation_channels, num_outputs, patch_size, softmax):
    return CNNDiagnosisBranch(encoder, image_channels, num_outputs, segmentation_channels=segmentation_channels)


def _base_roi(encoder, image_channels, segmentation_channels, num_outputs, patch_size, softmax):
    return ROIDiagnosisBranch(encoder, image_channels, num_outputs, softmax=softmax)


def _sian(encoder, image_channels, segmentation_channels, num_outputs, patch_size, softmax):
    return SiANDiagnosisBranch(encoder, image_channels, segmentation_channels, num_outputs, weight_map="learned",
                               exclude_background=softmax)


def _sian_cw_maxpool(encoder, image_channels, segmentation_channels, num_outputs, patch_size, softmax):
    return SiANDiagnosisBranch(encoder, image_channels, segmentation_channels, num_outputs,
                               weight_map="cw_maxpool", exclude_background=softmax)


def _seatrans(encoder, image_channels, segmentation_channels, num_outputs, patch_size, softmax):
    return SeATransDiagnosisBranch(encoder, image_channels, list(patch_size), num_outputs)


DIAGNOSIS_METHODS: Dict[str, Callable] = {
    "image_only": _image_only, "base_multi": _base_multi, "base_cat": _base_cat, "base_roi": _base_roi,
    "sian": _sian, "sian_cw_maxpool": _sian_cw_maxpool, "seatrans": _seatrans}


def build_diagnosis_branch(method: str, segmentation_encoder: nn.Module, image_channels: int,
                           segmentation_channels: int, num_outputs: int, patch_size: Sequence[int],
                           softmax: bool) -> nn.Module:
    """The branch of ``method`` for the planned ``segmentation_encoder``; ``segmentation_channels`` is ``K``."""
    if method not in DIAGNOSIS_METHODS:
        raise ValueError(f"Unknown diagnosis method {method!r}; choose one of {sorted(DIAGNOSIS_METHODS)}.")
    return DIAGNOSIS_METHODS[method](segmentation_encoder, image_channels, segmentation_channels, num_outputs,
                                     patch_size, softmax)
