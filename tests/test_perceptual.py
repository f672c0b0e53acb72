"""LPIPS, FID and CLIP score from local weight files (random weights made here: the values are
meaningless, the plumbing and the identities are what is tested)."""

import json

import pytest
import torch
from media import make_frame_folder
from sdxl_tiny import _tokenizer_files

from wdiff.cli import main
from wdiff.errors import WdiffError
from wdiff.perceptual import CLIPScore, InceptionFeatures, LPIPSMetric, frechet_distance

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from torchvision.models import alexnet, inception_v3

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(alexnet().state_dict(), folder / "alexnet.pth")
    torch.save(inception_v3(weights=None, init_weights=True).state_dict(), folder / "incv3.pth")
    return folder


def test_frechet_distance_by_hand():
    a = torch.tensor([[0.0], [2.0]], dtype=torch.float64)  # mean 1, variance 2
    b = torch.tensor([[1.0], [3.0]], dtype=torch.float64)  # mean 2, variance 2
    assert frechet_distance(a, b) == pytest.approx(1.0)
    c = torch.tensor([[0.0], [4.0]], dtype=torch.float64)  # mean 2, variance 8
    # (1 - 2)^2 + 2 + 8 - 2 sqrt(16) = 3
    assert frechet_distance(a, c) == pytest.approx(3.0)


def test_lpips_is_zero_for_identical_frames(weights):
    metric = LPIPSMetric(weights / "alexnet.pth")
    frames = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert metric(frames, frames).abs().max() < 1e-6
    assert (metric(frames, frames.flip(-1)) > 0).all()
    with pytest.raises(WdiffError, match="AlexNet"):
        LPIPSMetric(weights / "incv3.pth")


def test_fid_of_the_same_frames_is_zero(weights):
    features = InceptionFeatures(weights / "incv3.pth")
    frames = torch.rand(4, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    same = features(frames)
    assert same.shape == (4, 2048)
    assert frechet_distance(same, same) < 1e-6
    assert frechet_distance(same, features(frames.flip(-2) * 0.5)) > 1e-6


def _tiny_clip(folder):
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "vocab_size": 256,
            "max_position_embeddings": 77,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_attention_heads": 4,
            "num_hidden_layers": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    _tokenizer_files(folder / "words")
    tokenizer = CLIPTokenizer(
        str(folder / "words" / "vocab.json"),
        str(folder / "words" / "merges.txt"),
        model_max_length=77,
    )
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_clip_score_from_a_local_folder(tmp_path):
    folder = _tiny_clip(tmp_path / "clip")
    score = CLIPScore(folder, "a robot on a bench")
    frames = torch.rand(3, 3, 40, 56, generator=torch.Generator().manual_seed(3))
    values = score(frames)
    assert values.shape == (3,) and ((values >= 0) & (values <= 100)).all()
    assert torch.equal(score(frames[:1]), values[:1])


def test_eval_cli_with_weights(tmp_path, weights):
    video = make_frame_folder(tmp_path / "video", frames=4)
    out = tmp_path / "eval.json"
    args = ["eval", str(video), "--reference", str(video), "--no-cache", "-q", "-o", str(out)]
    args += ["--lpips-weights", str(weights / "alexnet.pth")]
    args += ["--fid-weights", str(weights / "incv3.pth")]
    assert main(args) == 0
    document = json.loads(out.read_text())
    summary = document["videos"][0]["summary"]
    assert summary["lpips"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert summary["fid"]["mean"] < 1e-3
    assert "lpips" not in document["skipped"] and "fid" not in document["skipped"]
    assert "clip_score" in document["skipped"]
    assert main(["eval", str(video), "--clip-model", str(tmp_path), "-q"]) == 2
