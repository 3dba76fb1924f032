"""Image-level (diagnosis) labels of an nnU-Net dataset: the file, its checks, and where it travels.

nnU-Net has no notion of an image-level label. We keep them in ``diagnosis_labels.json`` beside the raw dataset's
``dataset.json``::

    {
      "classes": ["no enhancing tumour", "enhancing tumour"],   # names; a case's class is an index into this list
      "ordinal": false,                                          # true: the classes are ordered grades (kappa)
      "labels": {"case_000": 1, "case_001": "no enhancing tumour", ...}   # every training case: index or name
    }

Binary and multi-class datasets both use it; test cases may be listed too (they are checked against the dataset's
``imagesTs`` only if they are listed). :func:`load_diagnosis_labels` checks it against the dataset's case ids and
says, for every problem, the file, the case and the fix. The file travels with the data: the raw folder's copy is
the user's source; :func:`copy_diagnosis_labels` puts a copy into nnU-Net's preprocessed folder and into a trained
model's folder, so prediction knows the class names without the raw data.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

from nnunet_ext.core.errors import UserInputError

LABELS_FILE_NAME = "diagnosis_labels.json"
FORMAT_HINT = ('{"classes": ["name of class 0", "name of class 1", ...], "ordinal": false, '
               '"labels": {"<case id>": <class index or name>, ...}}')


class DiagnosisLabelsError(UserInputError, ValueError):
    """A diagnosis labels file that cannot be used; the message names the file, the case and the fix."""


@dataclass(frozen=True)
class DiagnosisLabels:
    """The validated content of a ``diagnosis_labels.json``."""

    classes: List[str]
    ordinal: bool
    labels: Dict[str, int]  # case id -> class index
    source: Path

    def class_indices(self, case_ids: Iterable[str]) -> List[int]:
        """Class index of each case id (for a batch's ``keys``), in order."""
        return [self.labels[case_id] for case_id in case_ids]


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DiagnosisLabelsError(
            f"No diagnosis labels file at {path}. A diagnosis trainer needs one beside the dataset's dataset.json, "
            f"giving every training case its image-level label, in the form {FORMAT_HINT}.")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DiagnosisLabelsError(f"{path} is not valid JSON ({error}); expected {FORMAT_HINT}.") from None
    if not isinstance(content, dict):
        raise DiagnosisLabelsError(f"{path} must hold a JSON object, in the form {FORMAT_HINT}.")
    return content


def _checked_classes(path: Path, content: dict) -> List[str]:
    classes = content.get("classes")
    if (not isinstance(classes, list) or len(classes) < 2
            or not all(isinstance(c, str) and c.strip() for c in classes) or len(set(classes)) != len(classes)):
        raise DiagnosisLabelsError(
            f"{path}: 'classes' must list at least two distinct, non-empty class names (got {classes!r}); the "
            f"class of a case is an index into that list.")
    return classes


def _class_index(path: Path, case_id: str, value, classes: Sequence[str]) -> int:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int) and 0 <= value < len(classes):
        return value
    if isinstance(value, str) and value in classes:
        return classes.index(value)
    raise DiagnosisLabelsError(
        f"{path}: case '{case_id}' has label {value!r}, which is not one of the declared classes "
        f"(indices 0..{len(classes) - 1} or names {classes}). Fix the label or add the class to 'classes'.")


def _listed(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def load_diagnosis_labels(path: Union[str, Path], training_case_ids: Iterable[str],
                          other_case_ids: Iterable[str] = (), unknown_case_hint: str = "") -> DiagnosisLabels:
    """Read and check ``path`` against the dataset.

    :param training_case_ids: the dataset's training cases; each must have a label, and at least two classes must
        occur among them.
    :param other_case_ids: further known case ids (e.g. the test images) that may be labelled too.
    :param unknown_case_hint: said with labelled case ids that are not known (e.g. that the test images could not
        be listed because ``nnUNet_raw`` is unset).
    :raises DiagnosisLabelsError: with the file, the case(s) and the fix.
    """
    path = Path(path)
    content = _read_json(path)
    classes = _checked_classes(path, content)
    raw_labels = content.get("labels")
    if not isinstance(raw_labels, dict) or not raw_labels:
        raise DiagnosisLabelsError(f"{path}: 'labels' must map case ids to classes, in the form {FORMAT_HINT}.")
    training = sorted(set(training_case_ids))
    known = set(training) | set(other_case_ids)
    unknown = sorted(case_id for case_id in raw_labels if case_id not in known)
    if unknown:
        raise DiagnosisLabelsError(
            f"{path}: {len(unknown)} labelled case id(s) are not cases of the dataset: {_listed(unknown)}. Fix the "
            f"ids (they are the image file names without the _0000 channel suffix and file ending) or remove them."
            + (f" {unknown_case_hint}" if unknown_case_hint else ""))
    unlabelled = [case_id for case_id in training if case_id not in raw_labels]
    if unlabelled:
        raise DiagnosisLabelsError(
            f"{path}: {len(unlabelled)} training case(s) have no diagnosis label: {_listed(unlabelled)}. Add a "
            f"label for each, or remove the cases from the dataset.")
    labels = {case_id: _class_index(path, case_id, value, classes) for case_id, value in raw_labels.items()}
    present = sorted({labels[case_id] for case_id in training})
    if len(present) < 2:
        raise DiagnosisLabelsError(
            f"{path}: every training case has class '{classes[present[0]]}', so there is nothing to learn to tell "
            f"apart. Label cases of at least two classes.")
    ordinal = content.get("ordinal", False)
    if not isinstance(ordinal, bool):
        raise DiagnosisLabelsError(f"{path}: 'ordinal' must be true or false, got {ordinal!r}.")
    return DiagnosisLabels(classes=classes, ordinal=ordinal, labels=labels, source=path)


def write_diagnosis_labels(dataset_folder: Union[str, Path], classes: Sequence[str], labels: Dict[str, int],
                           ordinal: bool = False) -> Path:
    """Write ``diagnosis_labels.json`` (class names, ordinal flag, case id -> class index) into ``dataset_folder``
    (a raw dataset being generated: this writes the file the user then owns)."""
    path = Path(dataset_folder) / LABELS_FILE_NAME
    content = {"classes": list(classes), "ordinal": bool(ordinal), "labels": dict(sorted(labels.items()))}
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


def copy_diagnosis_labels(source: Union[str, Path], destination_folder: Union[str, Path]) -> Path:
    """Copy the labels file into ``destination_folder`` (the preprocessed dataset or a model folder).

    Those folders hold nnU-Net's and our outputs, not the user's: a copy already there is left alone when identical
    and replaced when it differs (``source``, the user's file, wins). Copying a file onto itself does nothing, so
    the raw folder's file is never written to.
    """
    source, destination = Path(source), Path(destination_folder) / LABELS_FILE_NAME
    if destination.resolve() == source.resolve():
        return destination
    if destination.is_file() and destination.read_bytes() == source.read_bytes():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    return destination


def find_diagnosis_labels(raw_dataset_folder: Optional[Union[str, Path]],
                          preprocessed_dataset_folder: Union[str, Path]) -> Path:
    """The labels file to use. The raw dataset's file is the user's source: when the raw dataset is there
    (``raw_dataset_folder`` not None) it is the only one used, and its absence is an error that names the copy in
    the preprocessed folder and how to accept it (the copy may be older than what the user last wrote). Without the
    raw data (prediction or training on a machine that holds only nnU-Net's preprocessed folder) the copy is used.
    Raises :class:`DiagnosisLabelsError` naming the places looked at."""
    copy = Path(preprocessed_dataset_folder) / LABELS_FILE_NAME
    if raw_dataset_folder is not None:
        source = Path(raw_dataset_folder) / LABELS_FILE_NAME
        if source.is_file():
            return source
        if copy.is_file():
            raise DiagnosisLabelsError(
                f"The raw dataset {raw_dataset_folder} has no {LABELS_FILE_NAME} (removed or renamed?). An earlier "
                f"training left a copy at {copy}, but it is not used without your word: it may differ from the "
                f"labels you last wrote.", file=source,
                fix=f"put your labels file back at {source}; to accept the copy as it is: cp {copy} {source}")
    elif copy.is_file():
        return copy
    places = " or ".join(str(c) for c in ([Path(raw_dataset_folder) / LABELS_FILE_NAME] if raw_dataset_folder
                                          else []) + [copy])
    raise DiagnosisLabelsError(
        f"No {LABELS_FILE_NAME} found at {places}. A diagnosis trainer needs one beside the raw dataset's "
        f"dataset.json, in the form {FORMAT_HINT}.")
