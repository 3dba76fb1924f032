"""Stage 1 of Div-attention's pipeline: trainers that take one more input channel, the cue of a click inside the
target (``nnunet_ext.clicks``)."""
