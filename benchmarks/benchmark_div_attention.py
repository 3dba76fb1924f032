"""Cost of Div-attention against plain nnU-Net, built from the same nnU-Net plans, measured in one run.

For each plans file (the synthetic dataset's 3d_fullres plans, and the BraTS sample's when ../shared is there) it
builds nnU-Net's own network (``nnUNetTrainer.build_network_architecture``) and the Div-attention network
(``DivAttentionTrainer.build_network_architecture``) with deep supervision on, as in training, and prints the ratios
Div-attention / plain of:

* time of one forward + backward pass on the plans' batch and patch size (median of ``--repeats``, the two
  networks interleaved so that drift of the machine affects both alike; loss = mean of every output);
* parameter count;
* peak memory: the peak resident memory of a fresh process that builds the network and runs two forward + backward
  passes, minus its resident memory just before the first pass (glibc is told to give large blocks back at
  ``free``, so the peak tracks what torch holds); and, exact and deterministic, the bytes of the tensors autograd
  saves for the backward pass.

Targets (issue 2): time <= 1.10x, parameters <= 1.05x, memory <= 1.15x.

    python benchmarks/benchmark_div_attention.py [--work-dir benchmark_work] [--repeats 5]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

TARGETS = {"time": 1.10, "parameters": 1.05, "peak memory": 1.15, "saved activations": 1.15}
NETWORKS = ("plain", "div_attention")


def build_network(kind: str, plans_file: Path, dataset_json_file: Path, configuration: str) -> tuple:
    """``(network, batch_size, patch_size, num_input_channels)`` as the trainers would build them."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    from nnunet_ext.trainers import DivAttentionTrainer

    plans_manager = PlansManager(str(plans_file))
    configuration_manager = plans_manager.get_configuration(configuration)
    dataset_json = json.loads(dataset_json_file.read_text())
    num_inputs = determine_num_input_channels(plans_manager, configuration_manager, dataset_json)
    num_outputs = plans_manager.get_label_manager(dataset_json).num_segmentation_heads
    trainer = {"plain": nnUNetTrainer, "div_attention": DivAttentionTrainer}[kind]
    network = trainer.build_network_architecture(plans_manager, configuration_manager, num_inputs, num_outputs, True)
    return network, configuration_manager.batch_size, configuration_manager.patch_size, num_inputs


def forward_backward(network: torch.nn.Module, batch: torch.Tensor) -> None:
    outputs = network(batch)
    sum(output.float().mean() for output in outputs).backward()
    network.zero_grad(set_to_none=True)


def saved_activation_bytes(network: torch.nn.Module, batch: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass of one forward."""
    storages = {}

    def remember(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(remember, lambda tensor: tensor):
        outputs = network(batch)
    sum(output.float().mean() for output in outputs).backward()
    network.zero_grad(set_to_none=True)
    return sum(storages.values())


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_peak_memory_in_this_process(kind: str, plans_file: Path, dataset_json_file: Path,
                                        configuration: str) -> int:
    torch.manual_seed(0)
    network, batch_size, patch_size, num_inputs = build_network(kind, plans_file, dataset_json_file, configuration)
    batch = torch.randn(batch_size, num_inputs, *patch_size)
    before = resident_bytes()
    for _ in range(2):
        forward_backward(network, batch)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before


def peak_memory_in_fresh_process(kind: str, plans_file: Path, dataset_json_file: Path, configuration: str) -> int:
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    output = subprocess.run([sys.executable, __file__, "--peak-memory-of", kind, str(plans_file),
                             str(dataset_json_file), configuration],
                            env=environment, check=True, capture_output=True, text=True).stdout
    return int(output.strip().splitlines()[-1])


def benchmark_plans(label: str, plans_file: Path, dataset_json_file: Path, configuration: str, repeats: int) -> dict:
    torch.manual_seed(0)
    built = {kind: build_network(kind, plans_file, dataset_json_file, configuration) for kind in NETWORKS}
    _, batch_size, patch_size, num_inputs = built["plain"]
    batch = torch.randn(batch_size, num_inputs, *patch_size)
    networks = {kind: built[kind][0] for kind in NETWORKS}
    seconds = {kind: [] for kind in NETWORKS}
    for kind in NETWORKS:  # warm-up
        forward_backward(networks[kind], batch)
    for _ in range(repeats):
        for kind in NETWORKS:
            start = time.perf_counter()
            forward_backward(networks[kind], batch)
            seconds[kind].append(time.perf_counter() - start)
    figures = {
        "time": {kind: statistics.median(seconds[kind]) for kind in NETWORKS},
        "parameters": {kind: sum(p.numel() for p in networks[kind].parameters()) for kind in NETWORKS},
        "saved activations": {kind: saved_activation_bytes(networks[kind], batch) for kind in NETWORKS},
        "peak memory": {kind: peak_memory_in_fresh_process(kind, plans_file, dataset_json_file, configuration)
                        for kind in NETWORKS},
    }
    print(f"\n{label}: {configuration}, batch {batch_size} x {num_inputs} x {patch_size}, "
          f"{len(networks['div_attention'].div_attention)} Div-attention junctions", flush=True)
    print(f"  {'measure':<20}{'plain nnU-Net':>16}{'Div-attention':>16}{'ratio':>9}{'target':>9}")
    units = {"time": (1.0, "s"), "parameters": (1e6, "M"), "saved activations": (2 ** 20, "MiB"),
             "peak memory": (2 ** 20, "MiB")}
    ratios = {}
    for measure, values in figures.items():
        scale, unit = units[measure]
        ratios[measure] = values["div_attention"] / values["plain"]
        verdict = "ok" if ratios[measure] <= TARGETS[measure] else "MISSED"
        print(f"  {measure:<20}{values['plain'] / scale:>13.3f} {unit:<3}{values['div_attention'] / scale:>12.3f} "
              f"{unit:<3}{ratios[measure]:>8.3f}x {TARGETS[measure]:>6.2f}x {verdict}", flush=True)
    return ratios


def prepare_plans(work_dir: Path, brats_source: Path) -> list:
    """Generate/convert the datasets and let nnU-Net plan them (no preprocessing); returns benchmark cases."""
    from nnunet_ext.datasets.brats2013 import convert_brats2013_sample
    from nnunet_ext.datasets.synthetic import generate_synthetic_dataset
    from nnunet_ext.cli.nnunet_commands import nnunet_environment, plan_and_preprocess

    environment = nnunet_environment(work_dir)
    raw = Path(environment["nnUNet_raw"])
    preprocessed = Path(environment["nnUNet_preprocessed"])
    cases = []
    datasets = [("synthetic", 501, "Dataset501_SyntheticLesions",
                 lambda: generate_synthetic_dataset(raw, dataset_id=501, num_training=8, num_test=0))]
    if brats_source.is_dir():
        datasets.append(("BraTS 2013 sample", 502, "Dataset502_BraTS2013Sample",
                         lambda: convert_brats2013_sample(brats_source, raw, dataset_id=502)))
    else:
        print(f"BraTS sample not found at {brats_source}: benchmarking the synthetic plans only", flush=True)
    for label, dataset_id, folder, create in datasets:
        plans_file = preprocessed / folder / "nnUNetPlans.json"
        if not plans_file.exists():
            print(f"planning {label} with nnU-Net ...", flush=True)
            if not (raw / folder).exists():
                create()
            plan_and_preprocess(dataset_id, ["3d_fullres"], environment, work_dir / f"plan_{dataset_id}.log",
                                preprocess=False)
        cases.append((label, plans_file, preprocessed / folder / "dataset.json", "3d_fullres"))
    return cases


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("benchmark_work"),
                        help="folder for the generated datasets and nnU-Net's plans (reused when present)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forward+backward passes per network")
    parser.add_argument("--brats-source", type=Path, default=None,
                        help="folder of the BraTS 2013 sample (default: ../shared/data/brats2013_sample)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument("--peak-memory-of", nargs=4, metavar=("NETWORK", "PLANS", "DATASET_JSON", "CONFIG"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.peak_memory_of:
        kind, plans_file, dataset_json_file, configuration = args.peak_memory_of
        print(measure_peak_memory_in_this_process(kind, Path(plans_file), Path(dataset_json_file), configuration))
        return 0
    from nnunet_ext.datasets.brats2013 import default_brats_sample_dir

    brats_source = args.brats_source or default_brats_sample_dir()
    print(f"torch {torch.__version__}, {args.threads} threads, {args.repeats} repeats", flush=True)
    for label, plans_file, dataset_json_file, configuration in prepare_plans(args.work_dir.resolve(), brats_source):
        benchmark_plans(label, plans_file, dataset_json_file, configuration, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
