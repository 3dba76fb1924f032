"""The one check of whether a set of weights fits a network, with an error that says what the weights are instead.

PyTorch's ``load_state_dict`` answers a mismatch with a dump of every missing and unexpected key. A user who
points ``nnUNetv2_predict -tr X`` at a model of another trainer, other plans or another dataset needs to know which
of these it is and what to run instead; every network and loader of nnunet_ext asks this function.
"""

from dataclasses import dataclass
from typing import List, Mapping, Optional

from nnunet_ext.core.errors import IncompatibleCheckpointError


@dataclass(frozen=True)
class WeightsMismatch:
    """Keys of the expected weights that are absent, keys given that are not expected, keys of another shape."""

    missing: List[str]
    unexpected: List[str]
    wrong_shape: List[str]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong_shape)

    def only_missing_under(self, prefix: str) -> bool:
        """Whether the one difference is that every parameter under ``prefix`` is absent."""
        return (bool(self.missing) and all(k.startswith(prefix) for k in self.missing)
                and not self.unexpected and not self.wrong_shape)


def weights_mismatch(expected: Mapping, given: Mapping) -> WeightsMismatch:
    """Compare two ``{name: tensor}`` mappings (state dicts) by key and shape."""
    return WeightsMismatch(
        missing=[k for k in expected if k not in given],
        unexpected=[k for k in given if k not in expected],
        wrong_shape=[k for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)])


def check_weights_fit(expected: Mapping, given: Mapping, network: str, source: str = "These weights",
                      added_module: Optional[Mapping[str, str]] = None,
                      other_architecture: str = "another architecture") -> None:
    """Raise :class:`IncompatibleCheckpointError` unless ``given`` fills ``expected`` exactly (same keys, shapes).

    :param network: what the weights are loaded into, for the message ("a Div-attention U-Net").
    :param source: where the weights come from ("These weights", or a checkpoint's path and trainer).
    :param added_module: ``{"prefix": "div_attention.", "name": "Div-attention"}``: the module a network adds to
        nnU-Net's planned U-Net. Weights lacking exactly that module are named as a plain segmentation model's.
    :param other_architecture: what weights with other keys most likely come from ("another diagnosis method").
    """
    mismatch = weights_mismatch(expected, given)
    if not mismatch:
        return
    if added_module is not None and mismatch.only_missing_under(added_module["prefix"]):
        reason = (f"they have no {added_module['name']} parameters ({added_module['prefix']}*): a trainer without "
                  f"it wrote them (for example nnU-Net's own nnUNetTrainer). Predict or continue with the trainer "
                  f"that wrote them (its name is stored as checkpoint['trainer_name']).")
    elif mismatch.wrong_shape:
        key = mismatch.wrong_shape[0]
        reason = (f"parameter '{key}' has shape {tuple(given[key].shape)} in the weights but "
                  f"{tuple(expected[key].shape)} here: the model was trained with other plans, another "
                  f"configuration, or another number of input channels or classes, or they belong to "
                  f"{other_architecture}. Use the trainer, plans, configuration and dataset the model was trained "
                  f"with.")
    else:
        reason = (f"{len(mismatch.missing)} missing (first: {mismatch.missing[:3]}), {len(mismatch.unexpected)} "
                  f"unexpected (first: {mismatch.unexpected[:3]}): they belong to {other_architecture}. Use the "
                  f"trainer, plans and dataset that wrote them (checkpoint['trainer_name']).")
    raise IncompatibleCheckpointError(f"{source} do not fit {network}: {reason}")
