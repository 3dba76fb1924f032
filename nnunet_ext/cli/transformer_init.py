"""``nnunet_ext_transformer_init``: a ``-pretrained_weights`` file that starts a transformer trainer with a timm ViT or
DeiT state dict in its transformer part (:mod:`nnunet_ext.architectures.pretrained_vit`)::

    nnunet_ext_transformer_init -d 503 -c 2d -tr UNETRTrainer -i vit_base_patch16_224.pth -o init.pth
    nnUNetv2_train 503 2d 0 -tr UNETRTrainer -pretrained_weights init.pth
"""

import argparse
from typing import Optional, Sequence

from nnunet_ext.cli.user_errors import reports_user_errors
from nnunet_ext.trainers.transformers.initial_weights import write_vit_init_weights


@reports_user_errors("nnunet_ext_transformer_init")
def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="nnunet_ext_transformer_init", description=__doc__.splitlines()[0])
    parser.add_argument("-d", required=True, help="dataset name or id")
    parser.add_argument("-c", required=True, help="configuration, e.g. 2d")
    parser.add_argument("-tr", required=True, help="the transformer trainer to initialise")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-i", required=True, help="a timm ViT/DeiT state dict (.pth), a local file")
    parser.add_argument("-o", required=True, help="the weights file to write (for -pretrained_weights)")
    args = parser.parse_args(argv)
    print(write_vit_init_weights(args.d, args.c, args.tr, args.i, args.o, args.p))


if __name__ == "__main__":
    main()
