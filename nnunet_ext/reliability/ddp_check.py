"""DistributedDataParallel as nnU-Net applies it with ``-num_gpus`` > 1, on the CPU: two processes, one process group
(``gloo``) for every case.

nnU-Net 2.8 wraps the network in ``DistributedDataParallel(network, device_ids=[local_rank])`` without
``find_unused_parameters``, after converting BatchNorm to SyncBatchNorm, and its trainer moves itself to CUDA once a
process group exists. SyncBatchNorm needs CUDA, so this check stands each trainer up *before* the group exists (on
the CPU, :mod:`~nnunet_ext.reliability.trainer_stand_up`) and wraps its network itself:
``DistributedDataParallel(network, device_ids=None)``, no SyncBatchNorm conversion, no ``find_unused_parameters``
(our networks use instance norm where nnU-Net's plans do, so the conversion would change nothing). Then a few of the
trainer's own ``train_step`` calls (its loss, its optimiser, its gradient clipping) on generated batches, different
per rank, with the lowest deep-supervision weight set to each of ``LOWEST_WEIGHTS`` (nnU-Net uses 0 with compile and
1e-6 without; a trainer whose ``deep_supervision_weights_are_the_trainers``, TransFuse's, keeps its own). After the steps, the parameters of both ranks must be identical and a frozen part unchanged.
"""

import json
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from nnunet_ext.core.errors import UnsupportedConfigurationError
from nnunet_ext.diagnosis.segmentation_model import SEGMENTATION_MODEL_VARIABLE
from nnunet_ext.reliability.network_builds import NetworkSetting
from nnunet_ext.reliability.trainer_stand_up import (generated_batch, parameters_snapshot,
                                                     segmentation_parameter_names, set_lowest_deep_supervision_weight,
                                                     stand_up_trainer)

LOWEST_WEIGHTS = (0.0, 1e-6)
WORLD_SIZE = 2
STEPS = 2  # DDP finds a parameter without gradient at the start of the step after the one that left it unused


@dataclass(frozen=True)
class DDPCase:
    trainer: str
    setting: str  # key of the settings passed to run_ddp_checks
    segmentation_model: Optional[str] = None  # folder for trainers that start from a trained segmentation model


@dataclass
class DDPResult:
    trainer: str
    setting: str
    lowest_weight: float
    error: Optional[str]  # what the steps raised (first line), None when they ran
    unused_parameters: List[str]  # trainable parameters without gradient after one step without DDP
    max_difference_between_ranks: Optional[float]
    frozen_parameters_changed: Optional[bool]  # None when nothing is frozen
    trained_parameters_changed: Optional[bool]


def _unused_parameters(trainer, batch) -> List[str]:
    """The trainable parameters that get no gradient from one training step (on a copy of the weights)."""
    network = trainer.network
    state = {k: v.clone() for k, v in network.state_dict().items()}
    trainer.train_step(batch)
    unused = [name for name, p in network.named_parameters() if p.requires_grad and p.grad is None]
    network.load_state_dict(state)
    trainer.optimizer.state.clear()  # momentum of that step gone too
    return unused


@dataclass
class _PreparedCase:
    case: DDPCase
    setting: NetworkSetting
    weight: float
    trainer: object
    frozen: List[str]
    before: Dict[str, torch.Tensor]
    unused_parameters: List[str]


def _prepare(case: DDPCase, setting: NetworkSetting, weight: float) -> Optional[_PreparedCase]:
    """Stand the trainer up (before the process group exists: nnU-Net's trainer would move itself to CUDA). None for
    a loss without deep supervision and any weight but the last (one run is enough)."""
    if case.segmentation_model:
        os.environ[SEGMENTATION_MODEL_VARIABLE] = case.segmentation_model
    trainer = stand_up_trainer(case.trainer, setting)
    if getattr(trainer, "deep_supervision_weights_are_the_trainers", False):
        if weight != LOWEST_WEIGHTS[-1]:
            return None  # the trainer's own weights (TransFuse's three losses) whatever nnU-Net would choose
    elif set_lowest_deep_supervision_weight(trainer.loss, weight) == 0 and weight != LOWEST_WEIGHTS[-1]:
        return None  # no deep supervision in the loss (a frozen segmentation): the weight changes nothing
    network = trainer.network
    frozen = [n for n, p in network.named_parameters() if not p.requires_grad]
    if getattr(trainer, "freeze_segmentation", False):
        frozen = sorted(set(frozen) | set(segmentation_parameter_names(network)))
    before = parameters_snapshot(network)
    unused = _unused_parameters(trainer, generated_batch(trainer, setting, seed=99))
    return _PreparedCase(case, setting, weight, trainer, frozen, before, unused)


def _run(prepared: _PreparedCase, rank: int) -> DDPResult:
    case, trainer, setting = prepared.case, prepared.trainer, prepared.setting
    result = DDPResult(case.trainer, case.setting, prepared.weight, None, prepared.unused_parameters, None, None,
                       None)
    network = trainer.network
    trainer.network = DistributedDataParallel(network, device_ids=None)
    try:
        for step in range(STEPS):
            trainer.train_step(generated_batch(trainer, setting, seed=1000 * rank + step))
    except Exception as error:  # reported, compared with plain nnU-Net's outcome by the test
        message = str(error).strip()
        result.error = f"{type(error).__name__}: {message.splitlines()[0] if message else ''}"
        return result
    finally:
        trainer.network = network
    flat = torch.cat([p.detach().flatten() for p in network.parameters()]).double()
    gathered = [torch.zeros_like(flat) for _ in range(WORLD_SIZE)]
    dist.all_gather(gathered, flat)
    result.max_difference_between_ranks = float(max((g - gathered[0]).abs().max() for g in gathered))
    after = parameters_snapshot(network)
    frozen, before = prepared.frozen, prepared.before
    result.frozen_parameters_changed = any(not torch.equal(before[n], after[n]) for n in frozen) if frozen else None
    result.trained_parameters_changed = any(not torch.equal(before[n], after[n]) for n in after if n not in frozen)
    return result


def _worker(rank: int, port: int, cases: List[DDPCase], settings: Dict[str, NetworkSetting], output: str) -> None:
    torch.set_num_threads(1)
    prepared, results = [], []
    for case in cases:
        for weight in LOWEST_WEIGHTS:
            try:
                item = _prepare(case, settings[case.setting], weight)
                if item is not None:
                    prepared.append(item)
            except UnsupportedConfigurationError as error:  # plans that cannot carry the network: said clearly
                results.append({**asdict(DDPResult(case.trainer, case.setting, weight, None, [], None, None, None)),
                                "refused": str(error)})
            except Exception:  # the check could not stand the trainer up: reported in full
                results.append({**asdict(DDPResult(case.trainer, case.setting, weight, None, [], None, None, None)),
                                "setup_error": traceback.format_exc()})
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE, timeout=timedelta(seconds=120))
    try:
        for item in prepared:
            results.append(asdict(_run(item, rank)))
            dist.barrier()
    finally:
        Path(output, f"rank_{rank}.json").write_text(json.dumps(results))
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ddp_checks(cases: List[DDPCase], settings: Dict[str, NetworkSetting], output_folder: Path,
                   timeout: float = 600) -> List[List[dict]]:
    """Run every case in one two-process ``gloo`` group (spawned: the workers import this module from the installed
    package). nnU-Net's folders must be set in ``os.environ`` (the workers construct trainers). Returns each rank's
    list of :class:`DDPResult` dicts (with ``refused`` or ``setup_error`` where a trainer could not be stood up)."""
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    context = mp.start_processes(_worker, args=(free_port(), cases, settings, str(output_folder)),
                                 nprocs=WORLD_SIZE, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise TimeoutError(f"the DDP checks did not finish within {timeout} s")
    return [json.loads((output_folder / f"rank_{rank}.json").read_text()) for rank in range(WORLD_SIZE)]
