import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Nothing a test runs may write into the user's home: every cache (ours, torch's, Hugging
# Face's, matplotlib's) points into one session folder, inherited by subprocesses too.
_SANDBOX = Path(tempfile.mkdtemp(prefix="wdiff-tests-"))
for _name in ("WDIFF_CACHE_DIR", "XDG_CACHE_HOME", "TORCH_HOME", "HF_HOME", "MPLCONFIGDIR"):
    os.environ[_name] = str(_SANDBOX / _name.lower())


def pytest_unconfigure(config):
    shutil.rmtree(_SANDBOX, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _tiny_model(tmp_path_factory, task: str):
    """A tiny randomly initialised built-in model file for ``task`` (fast to sample with)."""
    import torch

    from wdiff.models.builtin import ARCHITECTURES, BuiltinConfig, BuiltinNet

    torch.manual_seed(0)
    net = BuiltinNet(BuiltinConfig(task=task, **ARCHITECTURES["builtin-tiny"]))
    path = tmp_path_factory.mktemp("models") / f"{task}.safetensors"
    net.save(path)
    return path


@pytest.fixture(scope="session")
def sr_model(tmp_path_factory):
    return _tiny_model(tmp_path_factory, "sr")


@pytest.fixture(scope="session")
def inpaint_model(tmp_path_factory):
    return _tiny_model(tmp_path_factory, "inpaint")


@pytest.fixture
def model_loads(monkeypatch):
    """The ``--model`` of every denoiser the restores load (``restore.models.load_denoiser``,
    still doing its work), in order."""
    from wdiff.restore import models

    loads = []
    real = models.load_denoiser

    def counted(settings, device):
        loads.append(settings.model)
        return real(settings, device)

    monkeypatch.setattr(models, "load_denoiser", counted)
    return loads
