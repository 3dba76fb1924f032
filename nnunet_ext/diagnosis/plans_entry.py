"""The diagnosis settings inside the plans a diagnosis model is saved with.

``nnUNetTrainer.build_network_architecture`` receives the plans, not the dataset, and the predictor rebuilds the
network from the model folder's ``plans.json`` alone. A diagnosis trainer therefore writes its settings into the
plans it trains with (in memory; nnU-Net saves them as the model folder's ``plans.json``), under
``DIAGNOSIS_PLANS_KEY``::

    "nnunet_ext_diagnosis": {"classes": [...], "ordinal": false, "segmentation_softmax": true,
                             "tile_pooling": "mean"}

``tile_pooling`` is how one model's sliding-window tiles are pooled into the case's diagnosis, the same at the final
validation and at prediction (:mod:`nnunet_ext.diagnosis.aggregation`: ``"mean"``, ``"foreground_weighted"`` or
``"max"``). Plans written before it existed hold no ``tile_pooling``; they read as ``"mean"``, the rule those models
were validated with. The preprocessed plans file is never changed.
"""

from nnunet_ext.core.errors import IncompatibleCheckpointError
from nnunet_ext.diagnosis.aggregation import DEFAULT_TILE_POOLING, checked_tile_pooling
from nnunet_ext.diagnosis.labels import DiagnosisLabels

DIAGNOSIS_PLANS_KEY = "nnunet_ext_diagnosis"
TILE_POOLING_KEY = "tile_pooling"


def add_diagnosis_settings(plans: dict, labels: DiagnosisLabels, segmentation_softmax: bool,
                           tile_pooling: str = DEFAULT_TILE_POOLING) -> dict:
    """Store the class names, whether they are ordinal, whether the segmentation output is a softmax (label maps) or
    per-region sigmoids, and the tile pooling rule, in ``plans`` (changed in place and returned)."""
    tile_pooling = checked_tile_pooling(tile_pooling,
                                        f"the diagnosis settings of the plans '{plans.get('plans_name')}'")
    plans[DIAGNOSIS_PLANS_KEY] = {"classes": list(labels.classes), "ordinal": labels.ordinal,
                                  "segmentation_softmax": bool(segmentation_softmax), TILE_POOLING_KEY: tile_pooling}
    return plans


def diagnosis_settings(plans: dict) -> dict:
    """A copy of the settings :func:`add_diagnosis_settings` stored, ``tile_pooling`` filled in (``"mean"``) for
    plans written before it existed and checked; a clear error for plans of a model that no diagnosis trainer
    wrote."""
    settings = plans.get(DIAGNOSIS_PLANS_KEY)
    if settings is None:
        raise IncompatibleCheckpointError(
            f"The plans '{plans.get('plans_name')}' of dataset '{plans.get('dataset_name')}' hold no diagnosis "
            f"classes ('{DIAGNOSIS_PLANS_KEY}'): they are not the plans.json of a model trained by a diagnosis "
            f"trainer. Predict with the trainer that trained the model, or train a diagnosis trainer first.")
    settings = {**settings, TILE_POOLING_KEY: settings.get(TILE_POOLING_KEY, DEFAULT_TILE_POOLING)}
    checked_tile_pooling(settings[TILE_POOLING_KEY],
                         f"plans.json ('{plans.get('plans_name')}' of dataset '{plans.get('dataset_name')}'), "
                         f"'{DIAGNOSIS_PLANS_KEY}'")
    return settings
