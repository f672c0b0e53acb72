"""A tiny randomly initialised SDXL-shaped pipeline saved to a local folder (no downloads): the
same components and configs as SDXL, a few channels wide, with a character-level CLIP
tokenizer written here."""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch


def _tokenizer_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<|startoftext|>", "<|endoftext|>"]
    for char in string.ascii_letters + string.digits + string.punctuation:
        tokens += [char, f"{char}</w>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")


def make_tiny_sdxl(
    folder: Path,
    in_channels: int = 4,
    name: str = "sdxl",
    scheduler=None,
    latents_stats: bool = False,
    variant: str | None = None,
) -> Path:
    """``in_channels`` 4: a base SDXL; 9: the layout of the public SDXL inpainting checkpoints
    (saved by ``StableDiffusionXLInpaintPipeline``); 8: a wdiff SR fine-tune. ``scheduler``: a
    diffusers scheduler (default SDXL's Euler, 'leading'); ``latents_stats``: the VAE config
    has ``latents_mean``/``latents_std`` (Playground v2.5); ``variant``: weights saved as
    ``*.{variant}.safetensors`` only."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=32 + 6 * 8,  # pooled text + six size ids
        cross_attention_dim=64,  # both encoders' hidden states side by side
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=64,
    )
    if latents_stats:
        vae.register_to_config(
            latents_mean=[0.1, -0.2, 0.3, 0.05], latents_std=[0.9, 1.1, 0.8, 1.2]
        )
    text = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=3,
        vocab_size=256,
        max_position_embeddings=77,
        projection_dim=32,
        hidden_act="gelu",
    )
    scheduler = scheduler or EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    words = folder / "words"
    _tokenizer_files(words)
    tokenizer = CLIPTokenizer(
        str(words / "vocab.json"), str(words / "merges.txt"), model_max_length=77
    )
    kind = StableDiffusionXLInpaintPipeline if in_channels == 9 else StableDiffusionXLPipeline
    pipeline = kind(
        vae=vae,
        text_encoder=CLIPTextModel(text),
        text_encoder_2=CLIPTextModelWithProjection(text),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
    )
    target = folder / name
    pipeline.save_pretrained(target, variant=variant)
    return target
