"""Building blocks of our networks (torch and dynamic-network-architectures only), each built from the ``conv_op``
that nnU-Net's plans give, as dynamic-network-architectures' ``building_blocks`` are."""
