"""The diagnosis score gets its own small picture, ``diagnosis_progress.png``, each epoch; nnU-Net's
``progress.png`` is not touched."""

from pathlib import Path
from types import SimpleNamespace

from matplotlib.figure import Figure
from matplotlib.image import imread
from nnunetv2.training.logging.nnunet_logger import MetaLogger

from nnunet_ext.diagnosis.progress_plot import PROGRESS_FILE_NAME, save_score_plot
from nnunet_ext.trainers.diagnosis.epoch_score import DiagnosisEpochScore

MAX_BYTES = 100_000  # nnU-Net's progress.png is 3000 x 6750 pixels, about 1 MB


def test_the_score_curve_is_drawn_into_a_small_picture_of_its_own(tmp_path):
    path = save_score_plot(tmp_path / "diagnosis_progress.png", [0.5, float("nan"), 0.75], "val_diagnosis_auc",
                           ema=[0.5, 0.5, 0.525])
    picture = imread(path)
    assert picture.shape[:2] == (320, 640)
    magenta = (picture[..., 0] > 0.6) & (picture[..., 1] < 0.4) & (picture[..., 2] > 0.6)
    assert magenta.sum() > 20  # the score curve is drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diagnosis_progress.png"]


class NnUNetEpochEnd:
    """What nnU-Net's ``on_epoch_end`` does to the files: rank 0 writes ``progress.png`` (smaller here)."""

    def on_epoch_end(self):
        figure = Figure(figsize=(3, 2), dpi=50)
        figure.add_subplot().plot([0, 1], [1, 0])
        figure.savefig(f"{self.output_folder}/progress.png")
        self.progress_png_written = Path(self.output_folder, "progress.png").read_bytes()
        self.current_epoch += 1


class Trainer(DiagnosisEpochScore, NnUNetEpochEnd):
    pass


def test_each_epoch_writes_diagnosis_progress_png_and_leaves_progress_png_alone(tmp_path):
    trainer = Trainer()
    trainer.output_folder, trainer.local_rank, trainer.current_epoch = str(tmp_path), 0, 0
    trainer.diagnosis_labels = SimpleNamespace(classes=["no", "yes"])
    trainer.logger = MetaLogger(str(tmp_path), resume=False)
    trainer.logger.local_logger.my_fantastic_logging["val_diagnosis_auc"] = [0.5, 0.75]
    trainer.on_epoch_end()
    progress = tmp_path / "progress.png"
    diagnosis_png = tmp_path / PROGRESS_FILE_NAME
    assert diagnosis_png.is_file() and diagnosis_png.stat().st_size < MAX_BYTES
    height, width = imread(diagnosis_png).shape[:2]
    assert height <= 500 and width <= 800
    assert progress.read_bytes() == trainer.progress_png_written  # nnU-Net's picture as nnU-Net wrote it
    assert imread(progress).shape[:2] == (100, 150)
