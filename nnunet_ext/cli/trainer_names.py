"""Trainer names checked before any work: a name that nnU-Net's lookup would not find is refused with the closest
registered and nnU-Net trainer names (``nnUNetv2_train`` itself fails only after its dataset is loaded, and a demo
only after generating and planning its dataset)."""

import importlib
import inspect
import pkgutil
from typing import Iterable, List

from nnunet_ext.checks.names import did_you_mean
from nnunet_ext.core.errors import UserInputError
from nnunet_ext.trainers.registry import list_trainers


def nnunet_trainer_names() -> List[str]:
    """The trainer classes of nnU-Net's own ``training.nnUNetTrainer`` package (imports its modules, as nnU-Net's
    lookup does)."""
    import nnunetv2.training.nnUNetTrainer as package
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    names = set()
    for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        try:
            module = importlib.import_module(module_info.name)
        except Exception:  # a variant whose optional dependency is missing: nnU-Net's lookup skips it too
            continue
        names.update(name for name, value in vars(module).items()
                     if inspect.isclass(value) and issubclass(value, nnUNetTrainer))
    return sorted(names)


def trainer_exists(name: str) -> bool:
    """True if nnU-Net's lookup (which also searches our trainers through ``nnUNet_extTrainer``) finds ``name``."""
    if name in list_trainers():
        return True
    import contextlib
    import io

    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its search progress
            return recursive_find_trainer_class_by_name(name) is not None
    except RuntimeError:  # nnU-Net's "could not find the requested nnUNetTrainer"
        return False


def check_trainer_names(names: Iterable[str], option: str = "--trainers") -> None:
    """A :class:`UserInputError` for the first name nnU-Net would not find, with the closest names."""
    for name in names:
        if not trainer_exists(name):
            raise UserInputError(
                f"no trainer is called {name!r}.{did_you_mean(name, [*list_trainers(), *nnunet_trainer_names()])}",
                fix=f"check {option}; nnunet_ext_trainers lists ours, nnU-Net's are in "
                    f"nnunetv2/training/nnUNetTrainer")
