"""Attention maps of our networks (and nnU-Net's Primus) for one input tile: which maps a network has
(:mod:`network_maps`) and what its transformer blocks attend to (:mod:`token_attention`)."""
