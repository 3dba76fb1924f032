"""A trained model folder (``nnUNet_results/<dataset>/<trainer>__<plans>__<configuration>``) as prediction needs it:
the folder, the folds asked for, their checkpoint, and a checkpoint written by the folder's own trainer.

nnU-Net finds out late and obscurely: a misspelled trainer surfaces as a missing ``dataset.json``, a missing fold
or checkpoint as a ``FileNotFoundError`` of one path, and a plain nnU-Net checkpoint copied into a Div-attention or
diagnosis model's folder loads into the plain network (the checkpoint names the trainer that builds the network)
and predicts without a word.
"""

from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch

from nnunet_ext.checks.names import did_you_mean
from nnunet_ext.core.errors import IncompatibleCheckpointError, InputFilesError

FOLDER_FIELDS = ("trainer", "plans", "configuration")


def folder_fields(model_folder: Union[str, Path]) -> dict:
    """``<trainer>__<plans>__<configuration>`` -> its three fields (None each if the name is not of that form)."""
    parts = Path(model_folder).name.split("__")
    return dict(zip(FOLDER_FIELDS, parts)) if len(parts) == 3 else dict.fromkeys(FOLDER_FIELDS)


def folds_present(model_folder: Path, checkpoint_name: Optional[str] = None) -> List[str]:
    """The ``fold_X`` folders of ``model_folder`` (``X`` an int or ``all``), those holding ``checkpoint_name``
    only when it is given."""
    folds = [p.name[len("fold_"):] for p in sorted(model_folder.glob("fold_*")) if p.is_dir()]
    if checkpoint_name is not None:
        folds = [f for f in folds if (model_folder / f"fold_{f}" / checkpoint_name).is_file()]
    return sorted(folds, key=lambda f: (not f.isdigit(), int(f) if f.isdigit() else 0, f))


def check_model_folder_exists(model_folder: Union[str, Path], trainer: Optional[str] = None) -> Path:
    """``model_folder`` if it holds a trained model (``dataset.json``, ``plans.json``); otherwise an error listing
    the model folders of the same dataset, the closest to the requested one first."""
    model_folder = Path(model_folder)
    if (model_folder / "dataset.json").is_file() and (model_folder / "plans.json").is_file():
        return model_folder
    siblings = sorted(p.name for p in model_folder.parent.glob("*__*__*") if p.is_dir()) \
        if model_folder.parent.is_dir() else []
    fields = folder_fields(model_folder)
    trainers = sorted({folder_fields(s)["trainer"] for s in siblings})
    hint = did_you_mean(fields["trainer"], trainers) if fields["trainer"] else ""
    if not model_folder.is_dir():
        problem = f"There is no trained model {model_folder.name!r} (no folder {model_folder})."
    else:
        problem = f"{model_folder} is not a trained nnU-Net model folder (no dataset.json and plans.json in it)."
    found = (f"Model folders of this dataset: {', '.join(siblings)}." if siblings else
             f"{model_folder.parent} holds no trained model.")
    raise InputFilesError(f"{problem} {found}{hint}",
                          fix="check -tr (trainer), -p (plans) and -c (configuration), or train the model first "
                              "with nnUNetv2_train")


def check_folds_and_checkpoint(model_folder: Union[str, Path], folds: Optional[Sequence[Union[int, str]]],
                               checkpoint_name: str) -> List[str]:
    """The folds to use (as strings). ``folds`` None: every fold holding ``checkpoint_name`` (nnU-Net's
    auto-detection), an error if none does. Given folds must each exist and hold the checkpoint; the error lists
    the folds and checkpoints that are there."""
    model_folder = Path(model_folder)
    present = folds_present(model_folder)
    with_checkpoint = folds_present(model_folder, checkpoint_name)
    if folds is None:
        if not with_checkpoint:
            raise InputFilesError(f"No fold of {model_folder} holds {checkpoint_name} (folds present: "
                                  f"{', '.join(present) or 'none'}).", fix=_checkpoint_fix(model_folder, present))
        return with_checkpoint
    folds = [str(f) for f in folds]
    missing = [f for f in folds if f not in present]
    if missing:
        raise InputFilesError(
            f"{model_folder} has no fold {', '.join(missing)} (folds present: {', '.join(present) or 'none'}).",
            fix=f"pass -f {' '.join(with_checkpoint or present)}" if present else "train the fold first")
    without = [f for f in folds if f not in with_checkpoint]
    if without:
        raise InputFilesError(f"fold {', '.join(without)} of {model_folder} has no {checkpoint_name}.",
                              file=model_folder / f"fold_{without[0]}" / checkpoint_name,
                              fix=_checkpoint_fix(model_folder, without))
    return folds


def _checkpoint_fix(model_folder: Path, folds: Sequence[str]) -> str:
    names = sorted({p.name for f in folds for p in (model_folder / f"fold_{f}").glob("*.pth")})
    if names:
        return f"pass -chk with one of the checkpoints there: {', '.join(names)}"
    return "train the fold to the end (or continue it with --c) so that it writes its checkpoint"


def check_checkpoint_trainer(checkpoint_file: Union[str, Path], trainer: Optional[str] = None) -> dict:
    """The checkpoint (loaded on the CPU) if it was written by ``trainer`` (default: the trainer its model folder is
    named after); otherwise an :class:`IncompatibleCheckpointError` naming both trainers."""
    checkpoint_file = Path(checkpoint_file)
    trainer = trainer or folder_fields(checkpoint_file.parent.parent)["trainer"]
    try:
        checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=False)
    except Exception as error:  # a truncated or foreign file: say which one
        raise IncompatibleCheckpointError(f"{checkpoint_file} cannot be read as an nnU-Net checkpoint ({error}).",
                                          fix="copy it again, or train the fold again") from error
    written_by = checkpoint.get("trainer_name") if isinstance(checkpoint, dict) else None
    if trainer is not None and written_by != trainer:
        raise IncompatibleCheckpointError(
            f"{checkpoint_file} was written by trainer {written_by!r}, but it is in the model folder of {trainer!r}: "
            f"predicting would build {written_by!r}'s network and not {trainer!r}'s.", file=checkpoint_file,
            fix=f"predict with -tr {written_by} from that trainer's folder, or put {trainer!r}'s own checkpoint "
                f"there")
    return checkpoint


def check_trained_model(model_folder: Union[str, Path], folds: Optional[Sequence[Union[int, str]]],
                        checkpoint_name: str) -> List[str]:
    """Everything above for prediction: the folder, the folds, each fold's checkpoint and its trainer. Returns the
    folds that will be used."""
    model_folder = check_model_folder_exists(model_folder)
    folds = check_folds_and_checkpoint(model_folder, folds, checkpoint_name)
    for fold in folds:
        check_checkpoint_trainer(model_folder / f"fold_{fold}" / checkpoint_name)
    return folds


def model_folder_of(dataset: str, trainer: str, plans: str, configuration: str) -> Path:
    """nnU-Net's ``get_output_folder`` for ``-d -tr -p -c``, with an :class:`InputFilesError` that says what is
    missing (``nnUNet_results`` unset, or no dataset of that name or id) instead of nnU-Net's ``RuntimeError``."""
    import os

    results = os.environ.get("nnUNet_results")
    if not results:
        raise InputFilesError("nnUNet_results is not set, so the trained model cannot be found.",
                              fix="export nnUNet_results=<the folder nnUNetv2_train wrote the model into>")
    results = Path(results)
    name = str(dataset)
    if not name.startswith("Dataset"):
        if not name.isdigit():
            raise InputFilesError(f"-d {dataset!r} is neither a dataset id nor a DatasetXXX_Name.",
                                  fix="pass -d with the dataset's number or full name")
        prefix = f"Dataset{int(name):03d}_"
        matches = sorted(p.name for p in results.glob(f"{prefix}*") if p.is_dir()) if results.is_dir() else []
        if len(matches) != 1:
            present = sorted(p.name for p in results.glob("Dataset*") if p.is_dir()) if results.is_dir() else []
            problem = (f"nnUNet_results ({results}) holds no dataset {int(name):03d}" if not matches else
                       f"nnUNet_results ({results}) holds several datasets {int(name):03d}: {', '.join(matches)}")
            raise InputFilesError(f"{problem} (datasets there: {', '.join(present) or 'none'}).",
                                  fix="check -d and nnUNet_results, or pass -d with the full dataset name")
        name = matches[0]
    return results / name / f"{trainer}__{plans}__{configuration}"
