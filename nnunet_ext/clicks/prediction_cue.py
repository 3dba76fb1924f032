"""The click cue at prediction: nnU-Net's predictor, with one more channel added to every preprocessed case.

:class:`ClickCuePrediction` goes before nnU-Net's predictor class (``class P(ClickCuePrediction, nnUNetPredictor)``).
Between nnU-Net's preprocessing and its sliding window it adds the cue (:mod:`cue`) of the case's clicks as the last
channel, on the preprocessed grid and at its spacing, with the radius the model was trained with (the model's
``plans.json``, :data:`CLICK_PLANS_KEY`). The clicks are either points in world coordinates (a user's file, found on
the preprocessed grid as nnU-Net's preprocessing moved the voxels: ``nnunet_ext.geometry.world_points``) or
simulated from reference labels (one click per target component, a fixed seed, :mod:`drawing`), for scoring a click
model on a labelled test set. The sliding window, mirroring and export are nnU-Net's.

nnU-Net predicts in two ways, and the cue enters both between preprocessing and prediction: ``predict_from_files``
(preprocessing workers feed an iterator of cases: each item gets its cue) and ``predict_from_files_sequential``
(``-npp 0 -nps 0``: the configuration's preprocessor runs in this process; for the call, the predictor's
configuration hands out a subclass of that preprocessor whose ``run_case`` adds the cue).
"""

import os
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from batchgenerators.dataloading.multi_threaded_augmenter import MultiThreadedAugmenter

from nnunet_ext.clicks.cue import click_cue
from nnunet_ext.clicks.drawing import simulated_clicks
from nnunet_ext.core.errors import InputFilesError, UserInputError
from nnunet_ext.geometry.world_points import locate_query

CLICK_PLANS_KEY = "nnunet_ext_click_cue"  # in a click model's plans.json: {"radius_mm": R, "encoding": ...}


def click_settings(plans: dict) -> Optional[dict]:
    """The click cue a model was trained with (None: not a click-guided model)."""
    return plans.get(CLICK_PLANS_KEY)


def preprocessed_spacing(properties: dict, plans_manager, configuration_manager) -> List[float]:
    """The voxel spacing of the preprocessed case (a 2D configuration of a 3D case keeps the first axis')."""
    spacing = list(configuration_manager.spacing)
    if len(spacing) == len(properties["shape_after_cropping_and_before_resampling"]):
        return [float(s) for s in spacing]
    return [float(properties["spacing"][plans_manager.transpose_forward[0]]), *map(float, spacing)]


def case_of_image(image_file: str, file_ending: str) -> str:
    """``<folder>/<case>_0000<ending>`` -> ``<case>``."""
    name = os.path.basename(image_file)
    return name[:-len(file_ending)].rsplit("_", 1)[0]


class ConfigurationWithClickCue:
    """nnU-Net's configuration manager of ``predictor``, whose preprocessor also adds the case's click cue."""

    def __init__(self, configuration_manager, predictor: "ClickCuePrediction"):
        self._configuration_manager = configuration_manager
        self._predictor = predictor

    def __getattr__(self, name):
        return getattr(self._configuration_manager, name)

    @property
    def preprocessor_class(self):
        predictor, ending = self._predictor, self._predictor.dataset_json["file_ending"]

        class PreprocessorWithClickCue(self._configuration_manager.preprocessor_class):
            def run_case(self, image_files, seg_file, plans_manager, configuration_manager, dataset_json):
                data, seg, properties = super().run_case(image_files, seg_file, plans_manager,
                                                         configuration_manager, dataset_json)
                cue = predictor.cue_of_case(case_of_image(image_files[0], ending), data.shape, properties)
                return np.concatenate([data, cue.numpy()[None].astype(data.dtype)]), seg, properties
        return PreprocessorWithClickCue


class ClickCuePrediction:
    """Set ``clicks`` (case id -> world points in mm) and ``clicks_source`` (the file, for messages), or
    ``simulated_reference`` (the folder of reference label files) with ``simulated_seed``, before predicting."""

    clicks: Optional[Dict[str, List[List[float]]]] = None
    clicks_source: Optional[str] = None
    simulated_reference: Optional[str] = None
    simulated_seed: int = 0

    def cue_of_case(self, case: str, data_shape, properties: dict) -> torch.Tensor:
        """The cue ``[*S]`` of one preprocessed case of shape ``data_shape`` (``[C, *S]``)."""
        settings = click_settings(self.plans_manager.plans)
        configuration_manager = getattr(self.configuration_manager, "_configuration_manager",
                                        self.configuration_manager)
        shape = list(data_shape[1:])
        if self.simulated_reference is not None:
            voxels = self._simulated_voxels(case, shape, properties)
        else:
            if self.clicks is None or case not in self.clicks:
                raise InputFilesError(f"No click was given for case {case!r}; this click-guided model needs one.",
                                      file=self.clicks_source, case=case,
                                      fix="add its world coordinates (mm) to the clicks file (--clicks)")
            voxels = [locate_query(point, properties, shape, self.plans_manager, case, what="click",
                                   option="--clicks").preprocessed_voxel for point in self.clicks[case]]
        return click_cue(shape, voxels, preprocessed_spacing(properties, self.plans_manager, configuration_manager),
                         settings["radius_mm"])

    def _simulated_voxels(self, case: str, shape, properties: dict) -> list:
        """One click per component of the case's reference labels, found on the preprocessed grid."""
        ending = self.dataset_json["file_ending"]
        reference = Path(self.simulated_reference) / f"{case}{ending}"
        if not reference.is_file():
            raise InputFilesError(f"There is no reference label file for case {case!r} to simulate its clicks.",
                                  file=reference, case=case,
                                  fix="give --simulated_clicks the folder of the cases' labels (e.g. labelsTs)")
        labels = self.reference_on_preprocessed_grid(reference, properties, shape, case)
        ignore = self.label_manager.ignore_label if self.label_manager.has_ignore_label else None
        return simulated_clicks(labels, case, self.simulated_seed, ignore)

    def reference_on_preprocessed_grid(self, reference: Path, properties: dict, shape, case: str) -> np.ndarray:
        """A reference label file moved as nnU-Net's preprocessing moved its image (the properties' transposition,
        crop and shapes; nnU-Net's reader and its segmentation resampling): ``[*S]``."""
        labels, _ = self.plans_manager.image_reader_writer_class().read_seg(str(reference))
        labels = labels.transpose([0, *[i + 1 for i in self.plans_manager.transpose_forward]])
        if list(labels.shape[1:]) != list(properties["shape_before_cropping"]):
            raise InputFilesError(f"The reference labels of case {case!r} have shape {list(labels.shape[1:])}, its "
                                  f"image {list(properties['shape_before_cropping'])} (nnU-Net's axis order).",
                                  file=reference, case=case, fix="give the labels that belong to this image")
        labels = labels[(slice(None), *[slice(low, high) for low, high in properties["bbox_used_for_cropping"]])]
        original = [properties["spacing"][i] for i in self.plans_manager.transpose_forward]
        target = preprocessed_spacing(properties, self.plans_manager, self.configuration_manager)
        resampled = self.configuration_manager.resampling_fn_seg(labels, list(shape), original, target)
        return np.asarray(resampled)[0]

    def _with_cues(self, iterator):
        for item in iterator:
            data = item["data"]
            if isinstance(data, str):  # nnU-Net's worker left the case in a file (and nnU-Net deletes it after)
                path = data
                data = torch.from_numpy(np.load(path))
                os.remove(path)
            data = torch.as_tensor(data)
            if item["ofile"] is None:
                raise UserInputError("A click-guided model predicts cases with output files only (the case id "
                                     "finds its clicks).", fix="predict with an output folder")
            cue = self.cue_of_case(os.path.basename(item["ofile"]), data.shape, item["data_properties"])
            item["data"] = torch.cat([data, cue[None].to(data.dtype)])
            yield item

    def predict_from_data_iterator(self, data_iterator, save_probabilities: bool = False,
                                   num_processes_segmentation_export: int = 3):
        if click_settings(self.plans_manager.plans) is None:
            return super().predict_from_data_iterator(data_iterator, save_probabilities,
                                                      num_processes_segmentation_export)
        try:
            return super().predict_from_data_iterator(self._with_cues(data_iterator), save_probabilities,
                                                      num_processes_segmentation_export)
        finally:
            if isinstance(data_iterator, MultiThreadedAugmenter):  # nnU-Net's check sees our generator instead
                data_iterator._finish()

    # nnU-Net records this method's arguments by reading locals() against its signature: spell them out.
    def predict_from_files_sequential(self, list_of_lists_or_source_folder,
                                      output_folder_or_list_of_truncated_output_files,
                                      save_probabilities: bool = False, overwrite: bool = True,
                                      folder_with_segs_from_prev_stage: str = None):
        if click_settings(self.plans_manager.plans) is None:
            return super().predict_from_files_sequential(
                list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files, save_probabilities,
                overwrite, folder_with_segs_from_prev_stage)
        original = self.configuration_manager
        self.configuration_manager = ConfigurationWithClickCue(original, self)
        try:
            return super().predict_from_files_sequential(
                list_of_lists_or_source_folder, output_folder_or_list_of_truncated_output_files, save_probabilities,
                overwrite, folder_with_segs_from_prev_stage)
        finally:
            self.configuration_manager = original
