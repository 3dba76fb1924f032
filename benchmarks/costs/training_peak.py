"""``python -m benchmarks.costs.training_peak TRAINER PLANS DATASET_JSON CONFIGURATION BATCH``: prints the peak
training memory in bytes (see :func:`benchmarks.costs.training.peak_training_memory_here`)."""

import json
import sys

from nnunet_ext.reliability.network_builds import NetworkSetting

from benchmarks.costs.training import peak_training_memory_here

if __name__ == "__main__":
    trainer, plans_file, dataset_json_file, configuration, batch_size = sys.argv[1:]
    with open(plans_file) as plans, open(dataset_json_file) as dataset_json:
        setting = NetworkSetting(json.load(plans), configuration, json.load(dataset_json))
    print(peak_training_memory_here(trainer, setting, int(batch_size)))
