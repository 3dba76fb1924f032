"""Where Div-attention's extra training time goes: torch's profiler over forward + backward passes of plain nnU-Net
and of Div-attention on the same plans, and the aten operators whose self CPU time grew most, as a share of plain
nnU-Net's total.

    .venv/bin/python -m benchmarks.profile_div_attention [--work-dir benchmark_work] [--plans synthetic|brats]
"""

import argparse
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from nnunet_ext.datasets.brats2013 import default_brats_sample_dir
from nnunet_ext.reliability.network_builds import PLAIN_NNUNET, build_network

from benchmarks.costs.plans import planned_datasets
from benchmarks.costs.training import forward_backward, training_batch

DIV_ATTENTION = "DivAttentionTrainer"


def self_cpu_microseconds(network, batch, passes: int) -> dict:
    forward_backward(network, batch)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(passes):
            forward_backward(network, batch)
    totals = defaultdict(float)
    for event in profiler.key_averages():
        totals[event.key] += event.self_cpu_time_total / passes
    return totals


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work-dir", type=Path, default=Path("benchmark_work"))
    parser.add_argument("--plans", choices=("synthetic", "brats"), default="brats")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    datasets = planned_datasets(args.work_dir.resolve(), default_brats_sample_dir(), num_test=3)
    dataset = datasets[-1] if args.plans == "brats" else datasets[0]
    setting = dataset.setting()
    batch = training_batch(setting, args.batch_size)
    plain = self_cpu_microseconds(build_network(PLAIN_NNUNET, setting), batch, args.passes)
    ours = self_cpu_microseconds(build_network(DIV_ATTENTION, setting), batch, args.passes)
    total_plain, total_ours = sum(plain.values()), sum(ours.values())
    print(f"{dataset.label} plans, batch {args.batch_size}: self CPU per pass plain {total_plain / 1e6:.3f} s, "
          f"Div-attention {total_ours / 1e6:.3f} s ({total_ours / total_plain:.3f}x)")
    extra = sorted(((ours.get(k, 0.0) - plain.get(k, 0.0), k) for k in set(plain) | set(ours)), reverse=True)
    print(f"{'operator':<48}{'extra ms':>10}{'% of plain':>12}")
    for microseconds, key in extra[:args.top]:
        print(f"{key:<48}{microseconds / 1e3:>10.1f}{100 * microseconds / total_plain:>11.2f}%")


if __name__ == "__main__":
    main()
