"""Models behind the Denoiser protocol: built-in pixel models and the SDXL adapter."""

from wdiff.models.base import Denoiser

__all__ = ["Denoiser"]
