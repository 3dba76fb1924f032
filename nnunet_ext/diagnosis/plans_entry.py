"""The diagnosis classes inside the plans a diagnosis model is saved with.

``nnUNetTrainer.build_network_architecture`` receives the plans, not the dataset, and the predictor rebuilds the
network from the model folder's ``plans.json`` alone. A diagnosis trainer therefore writes its classes into the
plans it trains with (in memory; nnU-Net saves them as the model folder's ``plans.json``), under
``DIAGNOSIS_PLANS_KEY``. The preprocessed plans file is never changed.
"""

from nnunet_ext.core.errors import IncompatibleCheckpointError
from nnunet_ext.diagnosis.labels import DiagnosisLabels

DIAGNOSIS_PLANS_KEY = "nnunet_ext_diagnosis"


def add_diagnosis_settings(plans: dict, labels: DiagnosisLabels, segmentation_softmax: bool) -> dict:
    """Store the class names, whether they are ordinal, and whether the segmentation output is a softmax (label
    maps) or per-region sigmoids, in ``plans`` (changed in place and returned)."""
    plans[DIAGNOSIS_PLANS_KEY] = {"classes": list(labels.classes), "ordinal": labels.ordinal,
                                  "segmentation_softmax": bool(segmentation_softmax)}
    return plans


def diagnosis_settings(plans: dict) -> dict:
    """The settings :func:`add_diagnosis_settings` stored; a clear error for plans of a model that no diagnosis
    trainer wrote."""
    settings = plans.get(DIAGNOSIS_PLANS_KEY)
    if settings is None:
        raise IncompatibleCheckpointError(
            f"The plans '{plans.get('plans_name')}' of dataset '{plans.get('dataset_name')}' hold no diagnosis "
            f"classes ('{DIAGNOSIS_PLANS_KEY}'): they are not the plans.json of a model trained by a diagnosis "
            f"trainer. Predict with the trainer that trained the model, or train a diagnosis trainer first.")
    return settings
