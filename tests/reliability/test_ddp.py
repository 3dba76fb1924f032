"""Every checked trainer under DistributedDataParallel as nnU-Net wraps it for ``-num_gpus 2``, on the CPU: one
two-process ``gloo`` group runs every case (see ``nnunet_ext/reliability/ddp_check.py`` for what is done as nnU-Net
does it and what differs: the network is wrapped by the check, ``device_ids=None``, no SyncBatchNorm conversion,
because nnU-Net's trainer moves itself to CUDA once a process group exists). A few of the trainer's own training
steps, with the lowest deep-supervision weight 1e-6 (nnU-Net's choice under DDP without compile) and 0 (with
compile): the parameters of both ranks stay identical, a frozen segmentation part does not change; with weight 0
a trainer may fail only where nnU-Net's own network fails, and only because of that lowest output."""

import os

import pytest

from nnunet_ext.reliability.ddp_check import DDPCase, run_ddp_checks
from nnunet_ext.reliability.network_builds import PLAIN_NNUNET
from nnunet_ext.reliability.trainer_stand_up import segmentation_model_trainer_of, segmentation_models_for

from .conftest import CASE_IDS, CASES

UNUSED_PARAMETERS_ERROR = "Expected to have finished reduction in the prior iteration"


@pytest.fixture(scope="module")
def ddp_results(reliability_settings, tmp_path_factory):
    """``{(trainer, key, lowest weight): (rank 0 result, rank 1 result)}`` of one run over every case."""
    work_dir = tmp_path_factory.mktemp("ddp")
    models = segmentation_models_for(sorted({t for t, _ in CASES}), reliability_settings, work_dir)
    folders = {name: str(work_dir / name) for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    saved = {name: os.environ.get(name) for name in folders}
    os.environ.update(folders)  # the spawned workers construct nnU-Net trainers, which need these
    try:
        ranks = run_ddp_checks([DDPCase(trainer, key, str(models.get((key, segmentation_model_trainer_of(trainer)), "")) or None) for trainer, key in CASES], reliability_settings,
                               work_dir / "results")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value
    return {(r["trainer"], r["setting"], r["lowest_weight"]): (r, other) for r, other in zip(*ranks)}


def results_of(ddp_results, trainer, key):
    found = {weight: pair for (t, k, weight), pair in ddp_results.items() if (t, k) == (trainer, key)}
    assert found, f"no DDP result for {trainer} on {key}"
    return found


@pytest.mark.parametrize("trainer, key", CASES, ids=CASE_IDS)
def test_ddp_keeps_ranks_identical_and_frozen_parts_frozen(trainer, key, ddp_results):
    for weight, (rank_0, rank_1) in sorted(results_of(ddp_results, trainer, key).items()):
        assert "setup_error" not in rank_0, rank_0.get("setup_error")
        if "refused" in rank_0:
            assert "cannot be built" in rank_0["refused"]  # plans that cannot carry the network: a clear error
            continue
        assert rank_0["error"] == rank_1["error"]
        plain = ddp_results[(PLAIN_NNUNET, key, weight)][0]
        if rank_0["error"] is not None:
            assert plain["error"] is not None, f"weight {weight}: {rank_0['error']} where nnU-Net's network runs"
            assert UNUSED_PARAMETERS_ERROR in rank_0["error"]
            assert rank_0["unused_parameters"] and all(".seg_layers.0." in f".{name}"
                                                       for name in rank_0["unused_parameters"])
            continue
        assert weight > 0 or plain["error"] is None or rank_0["unused_parameters"] == []
        assert rank_0["max_difference_between_ranks"] == 0.0
        assert rank_0["trained_parameters_changed"] is True
        assert rank_0["frozen_parameters_changed"] in (None, False)
        if "_FrozenSegmentation" in trainer:
            assert rank_0["frozen_parameters_changed"] is False


def test_the_lowest_output_weighted_0_crashes_plain_nnunet_under_ddp(ddp_results):
    """The reason nnU-Net uses 1e-6 without compile, reproduced: so the check above can tell a crash apart."""
    for key in ("2d", "3d"):
        rank_0, _ = ddp_results[(PLAIN_NNUNET, key, 0.0)]
        assert rank_0["error"] is not None and UNUSED_PARAMETERS_ERROR in rank_0["error"]
        assert ddp_results[(PLAIN_NNUNET, key, 1e-6)][0]["error"] is None
