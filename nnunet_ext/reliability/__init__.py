"""What a GPU user's nnU-Net does to every network and trainer of ours (DDP, torch.compile, autocast, deep
supervision toggled), reproduced on the CPU on tiny real nnU-Net plans, for every distinct network build of the
trainer registry. The test suite (``tests/reliability``) and the cost benchmark drive these; DDP's worker processes
import them from the installed package."""
