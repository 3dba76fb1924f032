"""Segmentation-assisted diagnosis trainers: the mixins each adds one part (labels, network, loss, per-epoch score,
final validation, a trained segmentation model), and the trainers compose them."""
