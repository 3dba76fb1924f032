"""Where things lie: world points (mm) on a case's image grid and on nnU-Net's preprocessed grid
(:mod:`world_points`), connected components, their principal axes and the cubes around them (:mod:`components`,
:mod:`crop_cubes`). numpy, SciPy and SimpleITK only; no nnU-Net."""
