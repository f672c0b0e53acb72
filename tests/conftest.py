import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sr_model(tmp_path_factory):
    """A tiny randomly initialised built-in SR model file (fast to sample with)."""
    import torch

    from wdiff.models.builtin import ARCHITECTURES, BuiltinConfig, BuiltinNet

    torch.manual_seed(0)
    net = BuiltinNet(BuiltinConfig(task="sr", **ARCHITECTURES["builtin-tiny"]))
    path = tmp_path_factory.mktemp("models") / "sr.safetensors"
    net.save(path)
    return path
