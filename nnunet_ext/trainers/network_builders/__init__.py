"""From nnU-Net's plans to our networks: the glue that ``build_network_architecture`` calls (nnU-Net keeps its own
in ``get_network_from_plans``). Each builder takes the arguments of ``nnUNetTrainer.build_network_architecture``,
checks that the plans can carry the network (a clear error naming the configuration otherwise) and assembles it
from ``nnunet_ext.architectures``."""
