"""What each of our networks costs against plain nnU-Net on the same plans, measured in one run: training time and
memory, prediction through nnU-Net's own CLI, a diagnosis branch at prediction, and inductor compilation.

    .venv/bin/python -m benchmarks.costs [--work-dir benchmark_work] [--repeats 5] [--parts training,prediction,inductor]
"""
