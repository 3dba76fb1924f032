"""The plans the cost benchmark builds on: nnU-Net's default planner run on the synthetic dataset (with a few
held-out test cases, for prediction) and, when ``../shared`` is there, on the real BraTS 2013 sample."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from nnunet_ext.cli.nnunet_commands import nnunet_environment, plan_and_preprocess
from nnunet_ext.datasets.brats2013 import convert_brats2013_sample
from nnunet_ext.datasets.synthetic import generate_synthetic_dataset
from nnunet_ext.reliability.network_builds import NetworkSetting

CONFIGURATIONS = ("2d", "3d_fullres")


@dataclass(frozen=True)
class PlannedDataset:
    label: str
    dataset_id: int
    name: str
    plans_file: Path
    dataset_json_file: Path
    test_images: Optional[Path]  # raw images to predict (None: prediction is not measured on these plans)

    def setting(self, configuration: str = "3d_fullres") -> NetworkSetting:
        return NetworkSetting(json.loads(self.plans_file.read_text()), configuration,
                              json.loads(self.dataset_json_file.read_text()))


def planned_datasets(work_dir: Path, brats_source: Path, num_test: int) -> List[PlannedDataset]:
    """Generate/convert the datasets into ``work_dir`` and let nnU-Net plan them (no preprocessing); reused when
    present."""
    environment = nnunet_environment(work_dir)
    raw, preprocessed = Path(environment["nnUNet_raw"]), Path(environment["nnUNet_preprocessed"])
    candidates: Dict[str, tuple] = {
        "synthetic": (501, "Dataset501_SyntheticLesions",
                      lambda: generate_synthetic_dataset(raw, dataset_id=501, num_training=8, num_test=num_test)),
    }
    if brats_source.is_dir():
        candidates["BraTS 2013 sample"] = (502, "Dataset502_BraTS2013Sample",
                                           lambda: convert_brats2013_sample(brats_source, raw, dataset_id=502))
    else:
        print(f"BraTS sample not found at {brats_source}: the synthetic plans only", flush=True)
    datasets = []
    for label, (dataset_id, name, create) in candidates.items():
        plans_file = preprocessed / name / "nnUNetPlans.json"
        if not plans_file.exists():
            print(f"planning {label} with nnU-Net ...", flush=True)
            if not (raw / name).exists():
                create()
            plan_and_preprocess(dataset_id, CONFIGURATIONS, environment, work_dir / f"plan_{dataset_id}.log",
                                preprocess=False)
        test_images = raw / name / "imagesTs"
        datasets.append(PlannedDataset(label, dataset_id, name, plans_file, preprocessed / name / "dataset.json",
                                       test_images if test_images.is_dir() else None))
    return datasets
