"""Training costs of a network against plain nnU-Net's on the same plans: one forward + backward pass (deep
supervision on, as in training; loss = mean of every output), the bytes autograd saves for the backward pass, and the
peak resident memory of a fresh process that trains two steps.

Times are medians over ``repeats`` passes with the networks interleaved (plain, ours, plain, ours, ...), so that a
drift of the machine affects all alike; every network is run once first to warm up.
"""

import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, Sequence

import torch

from nnunet_ext.reliability.network_builds import NetworkSetting, build_network


def forward_backward(network: torch.nn.Module, batch: torch.Tensor) -> None:
    outputs = network(batch)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    sum(output.float().mean() for output in outputs).backward()
    network.zero_grad(set_to_none=True)


def training_batch(setting: NetworkSetting, batch_size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, setting.num_input_channels, *setting.patch_size, generator=generator)


def interleaved_seconds(trainers: Sequence[str], setting: NetworkSetting, batch_size: int,
                        repeats: int) -> Dict[str, float]:
    """Median seconds of one forward + backward pass per trainer's network."""
    networks = {trainer: build_network(trainer, setting) for trainer in trainers}
    batch = training_batch(setting, batch_size)
    for network in networks.values():
        forward_backward(network, batch)
    seconds = {trainer: [] for trainer in trainers}
    for _ in range(repeats):
        for trainer, network in networks.items():
            start = time.perf_counter()
            forward_backward(network, batch)
            seconds[trainer].append(time.perf_counter() - start)
    return {trainer: statistics.median(values) for trainer, values in seconds.items()}


def saved_activation_bytes(trainer: str, setting: NetworkSetting, batch_size: int) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass of one forward (exact, deterministic)."""
    network = build_network(trainer, setting)
    storages = {}

    def remember(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(remember, lambda tensor: tensor):
        forward_backward(network, training_batch(setting, batch_size))
    return sum(storages.values())


def parameter_count(trainer: str, setting: NetworkSetting) -> int:
    return sum(p.numel() for p in build_network(trainer, setting).parameters())


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_training_memory_here(trainer: str, setting: NetworkSetting, batch_size: int) -> int:
    """Peak resident memory of two training passes in this process, less what it held just before them."""
    network = build_network(trainer, setting)
    batch = training_batch(setting, batch_size)
    before = _resident_bytes()
    for _ in range(2):
        forward_backward(network, batch)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before


def peak_training_memory(trainer: str, plans_file: str, dataset_json_file: str, configuration: str,
                         batch_size: int) -> int:
    """:func:`peak_training_memory_here` in a fresh process (glibc told to give large blocks back at ``free``, so
    that the peak follows what torch holds)."""
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    output = subprocess.run([sys.executable, "-m", "benchmarks.costs.training_peak", trainer, plans_file,
                             dataset_json_file, configuration, str(batch_size)],
                            env=environment, check=True, capture_output=True, text=True).stdout
    return int(output.strip().splitlines()[-1])
