"""``torch.compile`` as nnU-Net applies it on a GPU: dynamo over the whole network, compiled once in ``initialize``,
then trained (deep supervision on), validated and predicted (deep supervision off, ``eval``, no gradients) with the
flag toggled on the compiled module, and trained again.

:func:`compile_report` runs those phases through a counting backend around ``aot_eager`` (dynamo's graph capture and
AOTAutograd's forward/backward tracing, without inductor's code generation, which nnU-Net refuses on the CPU), or
around ``eager`` (dynamo's capture, guards and graph breaks only, about half the time), and counts what was compiled
in each phase and every graph break. One graph per flag setting, none again when a setting
returns, and no graph break is what a network without state changes in ``forward`` and without data-dependent Python
control flow gives.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List

import torch
import torch._dynamo as dynamo
from torch._dynamo.backends.debugging import aot_eager
from torch._dynamo.utils import counters

from nnunet_ext.architectures.diagnosis.diagnosis_tap import set_diagnosis_output

BACKENDS = {"aot_eager": aot_eager, "eager": lambda graph_module, example_inputs: graph_module.forward}
PHASES = ("training", "prediction", "training again", "prediction again")


@dataclass
class CompileReport:
    graphs: Dict[str, int] = field(default_factory=dict)  # graphs compiled during each phase
    graph_breaks: int = 0
    graph_break_reasons: List[str] = field(default_factory=list)
    max_difference_to_eager: float = 0.0  # largest |compiled - eager| over the training outputs

    @property
    def recompiles(self) -> int:
        """Graphs compiled when a flag setting came back (each should hit the cache)."""
        return self.graphs.get("training again", 0) + self.graphs.get("prediction again", 0)


def _outputs(output) -> List[torch.Tensor]:
    return list(output) if isinstance(output, (list, tuple)) else [output]


def _set_deep_supervision(network: torch.nn.Module, enabled: bool) -> None:
    """What ``nnUNetTrainer.set_deep_supervision_enabled`` does (on the module inside the compiled wrapper); nothing
    for a network without that flag (UNETR: its trainer's toggle does nothing either)."""
    decoder = getattr(network, "decoder", None)
    if decoder is not None and hasattr(decoder, "deep_supervision"):
        decoder.deep_supervision = enabled


def compile_report(network: torch.nn.Module, batch: torch.Tensor, backend: str = "aot_eager",
                   loss: Callable = lambda outputs: sum(o.float().mean() for o in outputs)) -> CompileReport:
    """Compile ``network`` (built with deep supervision on) with ``backend`` (``"aot_eager"`` or ``"eager"``) and run
    the phases of :data:`PHASES`; a diagnosis network trains and predicts with its diagnosis output on, as our
    trainers and predictor run it."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    report = CompileReport()
    set_diagnosis_output(network, True)

    def counting_backend(graph_module, example_inputs):
        report.graphs[phase] = report.graphs.get(phase, 0) + 1
        return BACKENDS[backend](graph_module, example_inputs)

    dynamo.reset()
    counters.clear()
    compiled = torch.compile(network, backend=counting_backend)
    with torch.no_grad():
        network.train()
        eager = _outputs(network(batch))
    for phase in PHASES:
        training = phase.startswith("training")
        _set_deep_supervision(network, training)
        network.train(training)
        with torch.enable_grad() if training else torch.no_grad():
            outputs = _outputs(compiled(batch))
            if training:
                loss(outputs).backward()
        if phase == "training":
            report.max_difference_to_eager = max(float((o.detach() - e).abs().max()) for o, e in zip(outputs, eager))
    _set_deep_supervision(network, True)
    report.graph_breaks = sum(counters["graph_break"].values())
    report.graph_break_reasons = sorted(counters["graph_break"])
    dynamo.reset()
    return report
