"""Every distinct network build of the registry under ``torch.compile`` as nnU-Net compiles it on a GPU (compiled
once, deep supervision toggled between training and prediction on the compiled module, trained again): no graph
break (a stated bound for Base-ROI), one graph per flag setting, no recompile when a setting returns, outputs equal
to eager. Every build goes through dynamo (graph capture, guards, graph breaks: what depends on our Python code);
one network per family on the 3D plans also through ``aot_eager`` (AOTAutograd traces the backward pass too, which
doubles the time). The diagnosis branches, the largest graphs (10-30 s each here), are checked on the 2D plans and,
for the family's representative, on the 3D plans: their code is the same for both (every op from the plans'
``conv_op``); a build whose code another build runs entirely is compiled through it (``COMPILED_THROUGH``).
Inductor's own code generation runs in the cost benchmark (``python -m benchmarks.costs``),
not here."""

import pytest
import torch

from nnunet_ext.reliability.compile_check import compile_report
from nnunet_ext.reliability.network_builds import (build_network, family_representatives, network_signature,
                                                   trainer_class)

from .conftest import CASES, case_ids

BATCH = 2
# Base-ROI crops each sample at the box of its predicted foreground: the box's corners are Python ints read from the
# data (Tensor.item), four graph breaks per sample, and crops of new sizes compile anew (dynamo then marks the sizes
# dynamic). Every other network: none.
GRAPH_BREAKS_PER_SAMPLE = {"BaseROIDiagnosisTrainer": 4}
AOT_CHECKED = {(trainer, "3d") for trainer in family_representatives()}
# A build whose every line of Python another build runs too, with only a constructor option between them: SMCA's
# prior with centres from the segmentation's lesion (GaussianSpatialPrior(centres="lesion")) computes the query
# variant's start, then replaces it where a lesion is found; its graph holds the other's (about 30 s a compile).
COMPILED_THROUGH = {"SeATransSMCADiagnosisTrainer": "SeATransSMCALesionDiagnosisTrainer"}
COMPILE_CASES = [(trainer, key) for trainer, key in CASES
                 if trainer not in COMPILED_THROUGH
                 and (key == "2d" or (trainer, "3d") in AOT_CHECKED or not hasattr(trainer_class(trainer),
                                                                                   "diagnosis_method"))]


@pytest.mark.parametrize("trainer, key", COMPILE_CASES, ids=case_ids(COMPILE_CASES))
def test_compiles_as_nnunet_compiles_it(trainer, key, distinct_build):
    setting = distinct_build(trainer, key)
    network = build_network(trainer, setting)
    batch = torch.randn(BATCH, setting.num_input_channels, *setting.patch_size)
    report = compile_report(network, batch, "aot_eager" if (trainer, key) in AOT_CHECKED else "eager")
    bound = GRAPH_BREAKS_PER_SAMPLE.get(trainer, 0) * BATCH
    assert report.graph_breaks <= bound, report.graph_break_reasons
    if bound == 0:
        assert report.graphs == {"training": 1, "prediction": 1}
    assert report.recompiles == 0, report.graphs
    assert report.max_difference_to_eager <= 1e-4


@pytest.mark.parametrize("trainer, through", sorted(COMPILED_THROUGH.items()))
def test_a_build_compiled_through_another_differs_from_it_in_options_only(trainer, through, reliability_settings):
    setting = reliability_settings["2d"]
    assert (through, "2d") in COMPILE_CASES
    skipped, compiled = (network_signature(build_network(t, setting)) for t in (trainer, through))
    assert skipped[1] == compiled[1]  # the same parameters and buffers
    assert [m[:2] for m in skipped[0]] == [m[:2] for m in compiled[0]]  # the same modules, options aside
    assert skipped[0] != compiled[0]
