"""``nnunet_ext_compress``: a ``-pretrained_weights`` file holding the first ``N`` transformer blocks and everything
else of a trained transformer model, so that the model with ``N`` blocks starts from the full one::

    nnunet_ext_compress -i $nnUNet_results/Dataset503_X/TransUNetTrainer__nnUNetPlans__2d -b 3 -o init_3b.pth
    nnUNetv2_train 503 2d 0 -tr TransUNetTrainer_3b -pretrained_weights init_3b.pth
"""

import argparse
from typing import Optional, Sequence

from nnunet_ext.cli.user_errors import reports_user_errors
from nnunet_ext.trainers.transformers.initial_weights import write_compressed_weights


@reports_user_errors("nnunet_ext_compress")
def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="nnunet_ext_compress", description=__doc__.splitlines()[0])
    parser.add_argument("-i", required=True, help="the trained model's folder (<trainer>__<plans>__<configuration>)")
    parser.add_argument("-b", type=int, required=True, help="transformer blocks to keep (the first ones)")
    parser.add_argument("-o", required=True, help="the weights file to write (for -pretrained_weights)")
    parser.add_argument("-f", default="0", help="the fold whose checkpoint is compressed (default 0)")
    parser.add_argument("-chk", default="checkpoint_final.pth", help="the checkpoint (default checkpoint_final.pth)")
    args = parser.parse_args(argv)
    print(write_compressed_weights(args.i, args.b, args.o, args.f, args.chk))


if __name__ == "__main__":
    main()
