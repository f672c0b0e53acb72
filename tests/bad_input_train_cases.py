"""Bad input to ``wdiff finetune``, for the corpus in test_bad_input.py: each case prepares its
inputs under ``tmp`` and returns ``(args, expected)``: the CLI args (without ``--device cpu``)
and a substring of the one error line. Every run is tiny, so a missing check costs seconds."""

import os

import numpy as np
import pytest
from PIL import Image

TINY = ["--arch", "builtin-tiny", "--train-steps", "1", "--batch-size", "1", "--crop", "16"]


def _image(path, width=32, height=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)).save(path)
    return path


def _data(tmp):
    """A folder with one image that trains fine."""
    _image(tmp / "data" / "photo.png")
    return tmp / "data"


def _finetune(tmp, *extra, data=None):
    data = _data(tmp) if data is None else data
    return ["finetune", "--data", str(data), "--out", str(tmp / "run"), *TINY, *extra]


def finetune_empty_data_folder(tmp):
    (tmp / "nothing").mkdir()
    return _finetune(tmp, data=tmp / "nothing"), "nothing"


def finetune_missing_data_folder(tmp):
    return _finetune(tmp, data=tmp / "nowhere"), "nowhere"


def finetune_data_folder_of_text(tmp):
    (tmp / "notes").mkdir()
    (tmp / "notes" / "readme.txt").write_text("no pictures here\n")
    return _finetune(tmp, data=tmp / "notes"), "notes"


def finetune_data_file_named_png(tmp):
    (tmp / "fake").mkdir()
    (tmp / "fake" / "photo.png").write_text("not a picture\n")
    return _finetune(tmp, data=tmp / "fake"), "photo.png"


def finetune_images_smaller_than_crop(tmp):
    _image(tmp / "small" / "big.png", 64, 64)
    _image(tmp / "small" / "tiny.png", 24, 12)
    args = _finetune(tmp, data=tmp / "small")
    args[args.index("--crop") + 1] = "32"
    return args, "tiny.png"


def finetune_out_is_a_file(tmp):
    args = _finetune(tmp)
    (tmp / "run").write_text("my notes\n")
    return args, "choose a folder for --out"


def finetune_out_in_read_only_folder(tmp):
    if os.geteuid() == 0:
        pytest.skip("root writes in read-only folders")
    locked = tmp / "locked"
    locked.mkdir()
    locked.chmod(0o555)  # pytest's tmp_path cleanup copes with it
    args = _finetune(tmp)
    args[args.index("--out") + 1] = str(locked / "run")
    return args, "read-only"


def finetune_negative_lr(tmp):
    return _finetune(tmp, "--lr", "-1"), "--lr"


def finetune_nan_lr(tmp):
    return _finetune(tmp, "--lr", "nan"), "--lr"


def finetune_infinite_lr(tmp):
    return _finetune(tmp, "--lr", "inf"), "--lr"


def finetune_zero_steps(tmp):
    args = _finetune(tmp)
    args[args.index("--train-steps") + 1] = "0"
    return args, "--train-steps"


def finetune_crop_too_small(tmp):
    args = _finetune(tmp)
    args[args.index("--crop") + 1] = "12"
    return args, "--crop"


def finetune_unknown_task(tmp):
    return _finetune(tmp, "--task", "banana"), "--task banana"


def finetune_unknown_noise(tmp):
    return _finetune(tmp, "--noise", "banana"), "--noise banana"


def finetune_unknown_arch(tmp):
    args = _finetune(tmp)
    args[args.index("--arch") + 1] = "banana"
    return args, "--arch banana"


def finetune_unknown_augment(tmp):
    return _finetune(tmp, "--augment", "rotate"), "--augment rotate"


def finetune_first_layers_without_first_level(tmp):
    return _finetune(tmp, "--first-layers", "2"), "give --first-level too"


def finetune_resume_without_checkpoint(tmp):
    return _finetune(tmp, "--resume"), "no checkpoint to resume"


CASES = [
    finetune_empty_data_folder,
    finetune_missing_data_folder,
    finetune_data_folder_of_text,
    finetune_data_file_named_png,
    finetune_images_smaller_than_crop,
    finetune_out_is_a_file,
    finetune_out_in_read_only_folder,
    finetune_negative_lr,
    finetune_nan_lr,
    finetune_infinite_lr,
    finetune_zero_steps,
    finetune_crop_too_small,
    finetune_unknown_task,
    finetune_unknown_noise,
    finetune_unknown_arch,
    finetune_unknown_augment,
    finetune_first_layers_without_first_level,
    finetune_resume_without_checkpoint,
]
