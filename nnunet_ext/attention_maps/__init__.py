"""Attention maps of trained models for whole cases, in the cases' own geometry (``nnunet_ext_attention``):
nnU-Net's preprocessing and sliding window (:mod:`map_predictor`), nnU-Net's undoing of its resampling and cropping
(:mod:`original_geometry`), query points in world coordinates (``nnunet_ext.geometry.world_points``), the files, figures and attention
distances (:mod:`export`, :mod:`figures`, :mod:`attention_distance`)."""
