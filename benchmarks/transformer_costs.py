"""``python -m benchmarks.transformer_costs``: parameters and forward+backward time of the hybrid transformer
networks at the papers' width (ViT-B: 768 wide, 12 heads), relative to plain nnU-Net on the same plans in the same
run, and of each compressed variant relative to its 12-block model (the seminar's %PS column: "-61 %" parameters
for 3 blocks, "-74 %" for 1 block of TransUNet).

Plans: nnU-Net's default planner on the BraTS 2013 sample (``../shared/data``; the synthetic dataset if it is
absent), 2d and 3d_fullres, with the patch rounded up to a multiple of 16 for every network, plain nnU-Net
included (what the transformer trainers train with: 56 x 64 x 56 -> 64 x 64 x 64 on BraTS 3D), so that all are timed
on the same input. Batch: the plans' batch size; times are medians of ``--repeats`` interleaved passes on this
machine's CPU."""

import argparse
from pathlib import Path


from nnunet_ext.datasets.brats2013 import default_brats_sample_dir
from nnunet_ext.reliability.network_builds import PLAIN_NNUNET, NetworkSetting
from nnunet_ext.trainers.transformers.token_patch import plans_with_token_patch

from benchmarks.costs.plans import planned_datasets
from benchmarks.costs.training import interleaved_seconds, parameter_count

TOKEN_SIZE = 16
COMPRESSED = {"TransUNetTrainer": ("TransUNetTrainer_3b", "TransUNetTrainer_1b", "TransUNetTrainer_0b"),
              "UNETRTrainer": ("UNETRTrainer_3b",), "CATSTrainer": ("CATSTrainer_3b",), "TransFuseTrainer": ()}


def rounded_setting(dataset, configuration: str) -> NetworkSetting:
    setting = dataset.setting(configuration)
    plans, _ = plans_with_token_patch(setting.plans, configuration, TOKEN_SIZE)
    return NetworkSetting(plans, configuration, setting.dataset_json)


def table(setting: NetworkSetting, repeats: int, only=None) -> str:
    trainers = [PLAIN_NNUNET, *(n for full in COMPRESSED for n in (full, *COMPRESSED[full])
                                if only is None or n in only)]
    batch = int(setting.configuration_manager.batch_size)
    seconds = interleaved_seconds(trainers, setting, batch, repeats)
    parameters = {trainer: parameter_count(trainer, setting) for trainer in trainers}
    rows = ["| network | parameters | x plain | fwd+bwd s | x plain | parameters vs 12 blocks |",
            "|---|---|---|---|---|---|"]
    twelve = {n: full for full, compressed in COMPRESSED.items() for n in compressed}
    for trainer in trainers:
        versus = ""
        if trainer in twelve and twelve[trainer] in parameters:
            versus = f"{100 * (parameters[trainer] / parameters[twelve[trainer]] - 1):+.0f} %"
        rows.append(f"| {trainer} | {parameters[trainer] / 1e6:.1f} M | "
                    f"{parameters[trainer] / parameters[PLAIN_NNUNET]:.2f} | {seconds[trainer]:.2f} | "
                    f"{seconds[trainer] / seconds[PLAIN_NNUNET]:.2f} | {versus} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("benchmark_work"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--brats-source", type=Path, default=None)
    parser.add_argument("--trainers", nargs="+", default=None, help="only these (plain nnU-Net always)")
    arguments = parser.parse_args()
    datasets = planned_datasets(arguments.work_dir, arguments.brats_source or default_brats_sample_dir(), 0)
    dataset = datasets[-1]  # BraTS when present, else the synthetic dataset
    for configuration in ("2d", "3d_fullres"):
        setting = rounded_setting(dataset, configuration)
        print(f"\n### {dataset.label}, {configuration} (patch {list(setting.patch_size)}, batch "
              f"{setting.configuration_manager.batch_size}, {setting.num_input_channels} channels)\n", flush=True)
        print(table(setting, arguments.repeats, arguments.trainers), flush=True)


if __name__ == "__main__":
    main()
