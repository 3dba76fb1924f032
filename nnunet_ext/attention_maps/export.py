"""What ``nnunet_ext_attention`` writes for a folder of cases, and the checks before any work.

Per case ``<case>`` a folder ``<-o>/<case>/`` with one NIfTI per map (``<map name>.nii.gz``: float32, the case's
original geometry, a vector image when the map has several channels) and ``<case>_attention.png``; in ``<-o>``
``attention_maps.json`` (the model, the settings, and per case every file with its family, channels, the tiles
that formed it and the query point), and with ``distance`` ``attention_distance.json`` and ``attention_distance.png``
(:mod:`attention_distance`). Files we wrote are replaced only if unchanged since (``.nnunet_ext_written.json``);
anyone else's stops the run before any prediction unless ``--overwrite_outputs``.
"""

import json
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from nnunet_ext.architectures.attention.network_maps import FAMILIES, QUERY_FAMILIES
from nnunet_ext.attention_maps.attention_distance import (DEFAULT_GLOBAL_FRACTION, distance_summary,
                                                          write_distance_report)
from nnunet_ext.attention_maps.figures import case_figure, map_slices, prediction_slice
from nnunet_ext.attention_maps.map_predictor import AttentionMapPredictor
from nnunet_ext.attention_maps.original_geometry import check_writable_geometry, write_map
from nnunet_ext.geometry.world_points import locate_query
from nnunet_ext.core.errors import UserInputError
from nnunet_ext.core.owned_files import check_may_replace, record_written

OVERWRITE_FLAG = "--overwrite_outputs"
INDEX_NAME = "attention_maps.json"
DISTANCE_JSON_NAME = "attention_distance.json"
DISTANCE_PNG_NAME = "attention_distance.png"
MAP_NAME_PREFIXES = ("div_attention_", "seatrans_", "sian_", "attention_")
MAPS_OF = ("Div-attention trainers (DivAttention*), the SeATrans and SiAN diagnosis trainers, the transformer "
           "trainers (TransUNet, UNETR, CATS, TransFuse) and nnU-Net's Primus")


def select_families(available: Sequence[str], requested: Optional[Sequence[str]], with_query: bool,
                    model: str) -> List[str]:
    """The families to compute: ``requested`` (checked against the model's), or by default every family of the
    model that needs no query, and the query families when a query is given."""
    if not available:
        raise UserInputError(f"The model {model} has no attention maps.",
                             fix=f"use a model of a trainer with maps: {MAPS_OF}")
    if requested is None:
        return [family for family in available if family not in QUERY_FAMILIES or with_query]
    unknown = [family for family in requested if family not in available]
    if unknown:
        raise UserInputError(f"The model {model} has no {', '.join(unknown)} map(s); its maps are: "
                             f"{', '.join(available)}.", fix=f"--maps with some of: {' '.join(available)}")
    needing = [family for family in requested if family in QUERY_FAMILIES]
    if needing and not with_query:
        raise UserInputError(f"The map(s) {', '.join(needing)} are of a query point, and none was given.",
                             fix="--query X Y Z (world coordinates in mm, as a viewer shows them), or --queries "
                                 "with a JSON file {case id: [x, y, z]}")
    return [family for family in FAMILIES if family in requested]


def queries_per_case(cases: Sequence[str], query: Optional[Sequence[float]], queries_file: Optional[Path]
                     ) -> Dict[str, Optional[List[float]]]:
    """Every case's query point in mm (``--query`` for all, or ``--queries``' entry), None without one."""
    if queries_file is None:
        return {case: None if query is None else [float(v) for v in query] for case in cases}
    try:
        given = json.loads(Path(queries_file).read_text())
    except (OSError, ValueError) as error:
        raise UserInputError(f"The queries file cannot be read as JSON ({error}).", file=queries_file,
                             fix='write {"<case id>": [x, y, z], ...} with world coordinates in mm') from None
    missing = [case for case in cases if case not in given]
    if missing:
        raise UserInputError(f"The queries file has no point for case(s) {', '.join(missing)}.",
                             file=queries_file, case=missing[0],
                             fix="add a point [x, y, z] in mm for every case of -i, or predict those cases apart")
    return {case: [float(v) for v in given[case]] for case in cases}


def check_outputs(output: Path, cases: Sequence[str], with_distance: bool, overwrite: bool) -> None:
    """Before any work: the files of ours that this run would replace exist only if we wrote them (or
    ``--overwrite_outputs``)."""
    candidates = [output / INDEX_NAME] + ([output / DISTANCE_JSON_NAME, output / DISTANCE_PNG_NAME]
                                          if with_distance else [])
    for case in cases:
        folder = output / case
        if folder.is_dir():
            candidates += [p for p in folder.iterdir() if p.name.startswith(MAP_NAME_PREFIXES) and
                           p.name.endswith(".nii.gz")]
        candidates.append(folder / f"{case}_attention.png")
    for path in candidates:
        check_may_replace(path, OVERWRITE_FLAG, overwrite)


def write_owned(path: Path, write, overwrite: bool) -> Path:
    check_may_replace(path, OVERWRITE_FLAG, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path)
    return record_written(path)


def export_case(predictor: AttentionMapPredictor, case: str, files: Sequence[Path], families: Sequence[str],
                query_mm: Optional[Sequence[float]], output: Path, overwrite: bool) -> dict:
    """Maps of one case, written; returns its entry of the index (with ``distances`` when computed)."""
    reader = predictor.plans_manager.image_reader_writer_class
    data, properties = predictor.preprocess([str(f) for f in files])
    check_writable_geometry(properties, reader.__name__, case)
    query = None if query_mm is None else locate_query(query_mm, properties, data.shape[1:],
                                                       predictor.plans_manager, case)
    computed = predictor.case_maps(data, families, query)
    image = reader().read_images([str(f) for f in files])[0][0]
    segmentation = predictor.segmentation(computed.logits, properties)
    query_slice = None if query is None else int(round(query.image_index[0]))
    predicted_slice = prediction_slice(segmentation)
    folder = output / case
    entry = {"files": {}, "png": None}
    rows = []
    for name, stitched in computed.maps.items():
        values = predictor.in_original_geometry(stitched.values, properties)
        path = write_owned(folder / f"{name}.nii.gz", lambda p, v=values: write_map(v, properties, p), overwrite)
        entry["files"][name] = {"file": str(path.relative_to(output)), "family": stitched.family,
                                "channels": stitched.channels, "tiles": stitched.tiles,
                                "maximum": float(values.max()), "mean": float(values.mean())}
        rows.append(map_slices(name, values, stitched.channels,
                               query_slice if stitched.family in QUERY_FAMILIES else None, predicted_slice))
        del values
    if query is not None:
        entry["query"] = {"world_mm": list(query.world_mm), "image_index": list(query.image_index),
                          "preprocessed_voxel": list(query.preprocessed_voxel)}
        if computed.target_classes:
            entry["query"]["relevance_target_classes"] = sorted(set(computed.target_classes))
    if rows:
        query_yx = None if query is None else tuple(query.image_index[1:])
        png = write_owned(folder / f"{case}_attention.png",
                          lambda p: case_figure(p, case, image, segmentation, rows, query_yx), overwrite)
        entry["png"] = str(png.relative_to(output))
    if computed.distances is not None:
        entry["distances"] = computed.distances
        entry["uniform_distance"] = computed.uniform_distance
    return entry


def export_attention_maps(predictor: AttentionMapPredictor, cases: Mapping[str, Sequence[Path]], output: Path,
                          families: Sequence[str], queries: Mapping[str, Optional[Sequence[float]]],
                          overwrite: bool, model: dict, global_fraction: float = DEFAULT_GLOBAL_FRACTION) -> dict:
    """Every case (:func:`export_case`), then the index and, with ``distance``, the distance report. Returns the
    index."""
    output = Path(output)
    check_outputs(output, list(cases), "distance" in families, overwrite)
    index = {"model": model, "maps": list(families), "tile_step_size": predictor.tile_step_size,
             "geometry": "each case's original image grid (the grid of nnUNetv2_predict's segmentation)",
             "cases": {}}
    distances, uniform = {}, None
    for case, files in cases.items():
        print(f"attention maps of {case} ...", flush=True)
        entry = export_case(predictor, case, files, families, queries.get(case), output, overwrite)
        if "distances" in entry:
            distances[case], uniform = np.asarray(entry.pop("distances")), entry.pop("uniform_distance")
        index["cases"][case] = entry
    if distances:
        summary = distance_summary(distances, uniform, global_fraction)
        title = f"{model.get('trainer', '')}: mean attention distance ({len(distances)} case(s))"
        check_may_replace(output / DISTANCE_JSON_NAME, OVERWRITE_FLAG, overwrite)
        check_may_replace(output / DISTANCE_PNG_NAME, OVERWRITE_FLAG, overwrite)
        output.mkdir(parents=True, exist_ok=True)
        write_distance_report(summary, output / DISTANCE_JSON_NAME, output / DISTANCE_PNG_NAME, title)
        record_written(output / DISTANCE_JSON_NAME)
        record_written(output / DISTANCE_PNG_NAME)
        index["distance"] = {"json": DISTANCE_JSON_NAME, "png": DISTANCE_PNG_NAME,
                             "first_global_block": summary["first_global_block"]}
    write_owned(output / INDEX_NAME, lambda p: p.write_text(json.dumps(index, indent=2) + "\n"), overwrite)
    return index
