"""The real inductor backend, as nnU-Net compiles on a GPU (``torch.compile(network)``), here on the CPU: one
training step (forward + backward, deep supervision on, a diagnosis network with its diagnosis output on) compiled
and compared with the same network run eagerly. nnU-Net itself refuses to compile on the CPU ("CPU compile crashes for
2D models"), so a failure is reported beside plain nnU-Net's own result on the same plans, not hidden."""

import time
from dataclasses import dataclass

import torch
import torch._dynamo as dynamo

from nnunet_ext.architectures.diagnosis.diagnosis_tap import set_diagnosis_output
from nnunet_ext.reliability.network_builds import NetworkSetting, build_network

from benchmarks.costs.training import training_batch

RELATIVE_TOLERANCE = 1e-3  # of the largest eager output magnitude: float32 kernels fused in another order


@dataclass
class InductorResult:
    ok: bool
    seconds: float  # compile and first step
    max_relative_difference: float = float("nan")
    error: str = ""


def _outputs(output):
    return list(output) if isinstance(output, (list, tuple)) else [output]


def inductor_step(trainer: str, setting: NetworkSetting, batch_size: int = 2) -> InductorResult:
    network = build_network(trainer, setting)
    set_diagnosis_output(network, True)
    batch = training_batch(setting, batch_size)
    with torch.no_grad():
        eager = _outputs(network(batch))
    dynamo.reset()
    start = time.perf_counter()
    try:
        compiled = torch.compile(network, backend="inductor")
        outputs = _outputs(compiled(batch))
        sum(o.float().mean() for o in outputs).backward()
    except Exception as error:  # reported, with its first line, beside plain nnU-Net's result
        message = str(error).strip().splitlines()
        return InductorResult(False, time.perf_counter() - start,
                              error=f"{type(error).__name__}: {message[0][:160] if message else ''}")
    finally:
        dynamo.reset()
    seconds = time.perf_counter() - start
    scale = max(float(e.abs().max()) for e in eager) or 1.0
    difference = max(float((o.detach() - e).abs().max()) for o, e in zip(outputs, eager)) / scale
    return InductorResult(difference <= RELATIVE_TOLERANCE, seconds, difference,
                          "" if difference <= RELATIVE_TOLERANCE else "outputs differ from eager")
