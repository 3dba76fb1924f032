"""Which diagnosis branch each method name builds. Names follow the papers: ``image_only`` (the classifier without
mask), ``base_multi``, ``base_cat`` and ``base_roi`` (SeATrans' baselines, sec. 3.2), ``sian`` and
``sian_cw_maxpool`` (SiAN, sec. 3.2: learned weight maps, eq. 7, or CW-MaxPool, eq. 6) and ``seatrans``
(SeA-blocks, sec. 2)."""

from typing import Callable, Dict, Sequence, Tuple

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


def _seatrans(encoder, image_channels, segmentation_channels, num_outputs, patch_size, softmax, **options):
    return SeATransDiagnosisBranch(encoder, image_channels, list(patch_size), num_outputs,
                                   exclude_background=softmax, **options)


# method -> the keyword options its branch takes (a trainer sets them as class attributes); methods not listed take
# none. SeATrans: ``interaction_stages`` (None: the paper's placement by stride), ``max_tokens`` (256, the bound on
# each SeA-block's tokens, 2D and 3D), ``residual`` (False: the paper's fused output is the vitalised feature),
# ``spatial_prior`` ("none"; "smca" or "smca_lesion": SMCA's prior on the SeA-blocks' decoders).
BRANCH_OPTIONS: Dict[str, Tuple[str, ...]] = {
    "seatrans": ("interaction_stages", "max_tokens", "residual", "spatial_prior")}

DIAGNOSIS_METHODS: Dict[str, Callable] = {
    "image_only": _image_only, "base_multi": _base_multi, "base_cat": _base_cat, "base_roi": _base_roi,
    "sian": _sian, "sian_cw_maxpool": _sian_cw_maxpool, "seatrans": _seatrans}


def build_diagnosis_branch(method: str, segmentation_encoder: nn.Module, image_channels: int,
                           segmentation_channels: int, num_outputs: int, patch_size: Sequence[int],
                           softmax: bool, **branch_options) -> nn.Module:
    """The branch of ``method`` for the planned ``segmentation_encoder``; ``segmentation_channels`` is ``K``.

    :param branch_options: keyword options forwarded to the branch's constructor, only those
        :data:`BRANCH_OPTIONS` lists for ``method``; an option given as ``None`` keeps the branch's default.
    :raises ValueError: for an unknown method, or an option ``method`` does not take (the message names the method
        and its options).
    """
    if method not in DIAGNOSIS_METHODS:
        raise ValueError(f"Unknown diagnosis method {method!r}; choose one of {sorted(DIAGNOSIS_METHODS)}.")
    allowed = BRANCH_OPTIONS.get(method, ())
    unknown = sorted(set(branch_options) - set(allowed))
    if unknown:
        raise ValueError(f"The diagnosis method {method!r} takes no option(s) {unknown}; its options are "
                         f"{list(allowed) if allowed else 'none'}.")
    options = {name: value for name, value in branch_options.items() if value is not None}
    return DIAGNOSIS_METHODS[method](segmentation_encoder, image_channels, segmentation_channels, num_outputs,
                                     patch_size, softmax, **options)
