"""nnU-Net trainer subclasses, one registered class each (see :mod:`nnunet_ext.trainers.registry`).

Importing this package imports every module in it, so a new trainer needs no line here; ``__all__`` is every
registered trainer, and nnU-Net's lookup finds each by name through ``nnunet_ext/trainer_lookup`` (see
``nnunet_ext.lookup_hook``)."""

import importlib
import pkgutil

from nnunet_ext.trainers.registry import get_trainer, list_trainers

for _module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
    importlib.import_module(_module.name)

__all__ = list_trainers()
globals().update({_name: get_trainer(_name).trainer_class for _name in __all__})
