"""``wdiff finetune``: settings, the run folder, the shared loop and one module per architecture
(built-in pixel models, SDXL)."""

from wdiff.training.builtin import edm_loss, finetune_builtin
from wdiff.training.examples import SR_SCALES, training_example, training_noise
from wdiff.training.finetune import finetune
from wdiff.training.sdxl import finetune_sdxl
from wdiff.training.settings import TrainSettings, check_settings

__all__ = [
    "SR_SCALES",
    "TrainSettings",
    "check_settings",
    "edm_loss",
    "finetune",
    "finetune_builtin",
    "finetune_sdxl",
    "training_example",
    "training_noise",
]
