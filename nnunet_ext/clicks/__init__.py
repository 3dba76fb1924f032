"""Div-attention's one-click cue (Jiang et al., "Pipeline": "one-click information randomly generated within the mask
of target lesion or organ in the form of distance transform image"): the cue's encoding (:mod:`cue`), clicks drawn
inside target components (:mod:`drawing`), clicks read from a user's file (:mod:`clicks_file`), and the cue added to
nnU-Net's preprocessed cases at prediction (:mod:`prediction_cue`)."""
