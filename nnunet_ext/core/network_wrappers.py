"""The network inside the wrappers nnU-Net puts around it on a GPU."""

from torch import nn


def inner_network(network: nn.Module) -> nn.Module:
    """The module inside nnU-Net's wrappers: ``DistributedDataParallel`` (``.module``) and ``torch.compile``
    (``._orig_mod``), in any nesting; ``network`` itself when it is not wrapped."""
    while hasattr(network, "module") or hasattr(network, "_orig_mod"):
        network = getattr(network, "module", None) or getattr(network, "_orig_mod")
    return network
