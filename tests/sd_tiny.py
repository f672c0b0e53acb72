"""Tiny randomly initialised SD 1.5/2-shaped folders saved by their diffusers pipelines (no
downloads): the inpainting layout (9-channel UNet, one CLIP text encoder) and the x4 upscaler
(7-channel UNet with noise-level class labels, a 4-pixels-per-cell VAE scaled by 0.08333, a
DDPM low_res_scheduler, v-prediction)."""

from __future__ import annotations

from pathlib import Path

import torch
from sdxl_tiny import _tokenizer_files

TEXT = 32  # the text encoder's width = the UNet's cross-attention width


def _unet(in_channels: int, **extra):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        cross_attention_dim=TEXT,
        norm_num_groups=32,
        **extra,
    )


def _text(folder: Path):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    config = CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=TEXT,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=3,
        vocab_size=256,
        max_position_embeddings=77,
        hidden_act="gelu",
    )
    words = folder / "words"
    _tokenizer_files(words)
    tokenizer = CLIPTokenizer(
        str(words / "vocab.json"), str(words / "merges.txt"), model_max_length=77
    )
    return CLIPTextModel(config), tokenizer


def _vae(blocks: int, scaling_factor: float = 0.18215):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(32, 64, 64)[:blocks],
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        latent_channels=4,
        sample_size=64,
        scaling_factor=scaling_factor,
    )


def make_tiny_sd_inpaint(folder: Path, name: str = "sd-inpaint") -> Path:
    """The layout of runwayml/stable-diffusion-inpainting and stabilityai/stable-diffusion-2-
    inpainting (DDIM as SD 2's: 'leading', steps_offset 1, set_alpha_to_one false)."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline

    torch.manual_seed(0)
    text_encoder, tokenizer = _text(folder)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionInpaintPipeline(
        vae=_vae(2),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=_unet(9),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    target = folder / name
    pipeline.save_pretrained(target)
    return target


def make_tiny_sd_upscaler(folder: Path, name: str = "sd-x4") -> Path:
    """The layout of stabilityai/stable-diffusion-x4-upscaler."""
    from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionUpscalePipeline

    torch.manual_seed(0)
    text_encoder, tokenizer = _text(folder)
    scheduler = DDIMScheduler(
        beta_start=0.0001,
        beta_end=0.02,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="v_prediction",
    )
    pipeline = StableDiffusionUpscalePipeline(
        vae=_vae(3, scaling_factor=0.08333),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=_unet(7, num_class_embeds=1000),
        low_res_scheduler=DDPMScheduler(beta_schedule="scaled_linear"),
        scheduler=scheduler,
        max_noise_level=350,
    )
    target = folder / name
    pipeline.save_pretrained(target)
    return target
