"""An input folder for prediction against the model's ``dataset.json``: file names, channels per case and finite
voxel values, checked before nnU-Net starts its workers.

nnU-Net groups the files of ``-i`` by dropping the last 5 characters before the file ending (``_0000``), so a case
without the suffix or with a channel missing fails with an ``IndexError`` inside a worker after its pools started,
and an image holding NaN or infinity is predicted without a word: SimpleITK's NIfTI reader, nnU-Net's default,
turns NaN into 0 (found here with SimpleITK 2.x: a NaN voxel written with nibabel reads back as 0), and other readers
hand the NaN to nnU-Net's normalisation, which spreads it; either way the segmentation changes around it. NIfTI files
are therefore counted with nibabel, which reads the stored values; other formats with the model's reader.
"""

import re
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from nnunet_ext.core.errors import InputFilesError

CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
MAX_LISTED = 5


def _listed(items) -> str:
    items = list(items)
    return ", ".join(map(str, items[:MAX_LISTED])) + (f" and {len(items) - MAX_LISTED} more"
                                                     if len(items) > MAX_LISTED else "")


def input_cases(input_folder: Union[str, Path], dataset_json: dict) -> Dict[str, List[Path]]:
    """case id -> its files, channel 0 first, for every case of ``input_folder``; an :class:`InputFilesError` for a
    file without the ``_XXXX`` channel suffix, a case whose channels are not exactly ``0 .. n-1`` of the
    ``channel_names`` in ``dataset_json``, or a folder without any file of the dataset's file ending."""
    input_folder = Path(input_folder)
    ending = dataset_json["file_ending"]
    channels = dataset_json.get("channel_names", dataset_json.get("modality"))
    num_channels = len(channels)
    expected = ", ".join(f"_{int(k):04d} ({name})" for k, name in sorted(channels.items(), key=lambda i: int(i[0])))
    if not input_folder.is_dir():
        raise InputFilesError(f"The input folder {input_folder} does not exist.", fix="check -i")
    files = sorted(p for p in input_folder.iterdir() if p.is_file() and p.name.endswith(ending))
    if not files:
        others = sorted({"".join(p.suffixes) for p in input_folder.iterdir() if p.is_file()})
        raise InputFilesError(
            f"{input_folder} holds no {ending} file (the model's dataset.json says file_ending {ending!r}"
            + (f"; found {_listed(others)})." if others else ")."),
            fix=f"convert the images to {ending}, or check -i")
    by_case: Dict[str, Dict[int, Path]] = {}
    for file in files:
        match = CHANNEL_SUFFIX.match(file.name[:-len(ending)])
        if match is None:
            raise InputFilesError(
                f"{file.name} has no channel suffix: nnU-Net expects <case>_XXXX{ending}, one file per channel "
                f"({expected}).", file=file, case=file.name[:-len(ending)],
                fix=f"rename it to {file.name[:-len(ending)]}_0000{ending}" + (" (and its other channels)"
                                                                                if num_channels > 1 else ""))
        by_case.setdefault(match["case"], {})[int(match["channel"])] = file
    for case, found in sorted(by_case.items()):
        if sorted(found) != list(range(num_channels)):
            missing = [f"_{c:04d}" for c in range(num_channels) if c not in found]
            extra = [f"_{c:04d}" for c in sorted(found) if c >= num_channels]
            what = "; ".join(part for part in (f"missing {', '.join(missing)}" if missing else "",
                                               f"unexpected {', '.join(extra)}" if extra else "") if part)
            raise InputFilesError(
                f"case {case!r} has channels {', '.join(f'_{c:04d}' for c in sorted(found))}, the model expects "
                f"{num_channels}: {expected} ({what}).", file=input_folder, case=case,
                fix="give every case one file per channel of the model's dataset.json, numbered from _0000")
    return {case: [found[c] for c in range(num_channels)] for case, found in sorted(by_case.items())}


NIFTI_ENDINGS = (".nii", ".nii.gz")


def non_finite_voxels(image: np.ndarray) -> int:
    return int(image.size - np.count_nonzero(np.isfinite(image)))


def stored_values(file: Path, reader) -> np.ndarray:
    """The voxel values as stored: nibabel for NIfTI (SimpleITK reads NaN as 0), the model's reader otherwise."""
    if file.name.endswith(NIFTI_ENDINGS):
        import nibabel

        return np.asanyarray(nibabel.load(str(file)).dataobj)
    return np.asarray(reader.read_images([str(file)])[0])


def check_finite_images(cases: Dict[str, List[Path]], reader_writer_class) -> None:
    """Read every file (:func:`stored_values`; ``reader_writer_class`` is the model's,
    ``plans_manager.image_reader_writer_class``) and raise an :class:`InputFilesError` naming the file and the count of NaN / infinite voxels."""
    reader = reader_writer_class()
    for case, files in cases.items():
        for file in files:
            image = stored_values(file, reader)
            count = non_finite_voxels(image)
            if count:
                raise InputFilesError(
                    f"{file.name} holds {count} NaN or infinite voxel(s) of {image.size}; nnU-Net would predict "
                    f"without a warning (its NIfTI reader makes NaN 0) and the segmentation would change around "
                    f"them.", file=file,
                    case=case, fix="replace them in the image (e.g. by the background intensity) before predicting")


def check_prediction_inputs(input_folder: Union[str, Path], dataset_json: dict,
                            reader_writer_class: Optional[type] = None) -> Dict[str, List[Path]]:
    """:func:`input_cases`, then (given the reader) :func:`check_finite_images`; returns the cases."""
    cases = input_cases(input_folder, dataset_json)
    if reader_writer_class is not None:
        check_finite_images(cases, reader_writer_class)
    return cases
