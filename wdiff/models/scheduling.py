"""A diffusers folder's own scheduler read into wdiff's sigma-parametrisation.

wdiff samples ``x = z0 + sigma n`` with its own solvers (Euler, Heun, self-guidance); what
diffusers decides from ``scheduler/scheduler_config.json`` is kept: the class named there
(diffusers' own, loaded from the folder), its noise levels and the timesteps the UNet sees at
them, the preconditioning (EDM's ``sigma_data``, ``c_in``, ``c_noise``, ``c_skip``/``c_out``;
otherwise ``x / sqrt(sigma^2 + 1)`` and the prediction type), and the first x
(``init_noise_sigma``). Three families:

- sigma space (Euler, Heun, LMS): ``scheduler.sigmas`` and ``init_noise_sigma`` as they are
  (``sqrt(sigma_max^2 + 1)`` for 'leading' spacing).
- variance preserving (DDIM, DDPM, PNDM, DPM-Solver, UniPC, DEIS): the sample is
  ``x / sqrt(sigma^2 + 1)``, so the first x is ``sqrt(sigma_max^2 + 1)`` times theirs;
  deterministic DDIM is exactly Euler here. Their last step lands at 0.
- EDM (``EDMEulerScheduler``, ``EDMDPMSolverMultistepScheduler``: Playground v2.5): Karras
  sigmas, ``sigma_data`` from the config, ``c_noise = 0.25 log sigma``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from wdiff.errors import WdiffError

SIGMA_SPACE = (
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "LMSDiscreteScheduler",
)
VARIANCE_PRESERVING = (
    "DDIMScheduler",
    "DDPMScheduler",
    "PNDMScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "UniPCMultistepScheduler",
    "DEISMultistepScheduler",
)
EDM = ("EDMEulerScheduler", "EDMDPMSolverMultistepScheduler")
SUPPORTED = SIGMA_SPACE + VARIANCE_PRESERVING + EDM


def load_scheduler(folder: Path):
    """The diffusers scheduler class ``folder/scheduler_config.json`` names, from that folder."""
    import diffusers

    config = Path(folder) / "scheduler_config.json"
    try:
        name = json.loads(config.read_text()).get("_class_name")
    except (OSError, ValueError) as error:
        raise WdiffError(f"{config}: not readable as a scheduler config ({error})") from error
    if name not in SUPPORTED:
        raise WdiffError(
            f"{config}: scheduler {name} is not supported; use one of {', '.join(SUPPORTED)}"
        )
    try:
        return getattr(diffusers, name).from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise WdiffError(f"{config}: could not build {name} ({error})") from error


class Schedule:
    """Noise levels, timesteps and preconditioning of one diffusers scheduler."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self.name = type(scheduler).__name__
        self.edm = self.name in EDM
        self.prediction = scheduler.config.prediction_type
        if self.prediction not in ("epsilon", "v_prediction", "sample"):
            raise WdiffError(f"prediction type {self.prediction} is not supported")
        if self.edm and self.prediction == "sample":
            raise WdiffError(f"{self.name} with prediction type sample is not supported")
        self.sigma_data = float(scheduler.config.sigma_data) if self.edm else 1.0
        self._timesteps: dict[float, float] = {}  # the schedule's own sigma -> its timestep
        self._log_sigmas = None
        if not self.edm:
            alphas = scheduler.alphas_cumprod.to(torch.float64)
            self._log_sigmas = ((1 - alphas) / alphas).sqrt().log().numpy()

    def sigmas(self, steps: int) -> torch.Tensor:
        """``steps + 1`` float32 noise levels as the scheduler sets them for ``steps``,
        descending, the last 0; remembers the timestep of each."""
        scheduler = self.scheduler
        scheduler.set_timesteps(steps)
        timesteps = scheduler.timesteps.to(torch.float64)
        if self.name in SIGMA_SPACE or self.edm or hasattr(scheduler, "sigmas"):
            levels = scheduler.sigmas.to(torch.float32)
        else:  # DDIM, DDPM, PNDM: the sigma of each timestep
            alphas = scheduler.alphas_cumprod.to(torch.float64)[timesteps.long()]
            levels = ((1 - alphas) / alphas).sqrt().to(torch.float32)
        for sigma, step in zip(levels.tolist(), timesteps.tolist(), strict=False):
            self._timesteps.setdefault(sigma, step)
        levels = torch.unique_consecutive(levels[: len(timesteps)])
        return torch.cat([levels, levels.new_zeros(1)]).clone()

    def init_noise_sigma(self, sigmas: torch.Tensor) -> torch.Tensor:
        """The standard deviation of the first x in sigma space for the schedule ``sigmas``
        (as ``sigmas`` returned it): diffusers' ``init_noise_sigma``, carried over from the
        variance-preserving sample where the scheduler works in one."""
        start = sigmas[0].to(torch.float32)
        if self.name in VARIANCE_PRESERVING:
            return float(self.scheduler.init_noise_sigma) * (start**2 + 1).sqrt()
        if self.edm:
            return torch.as_tensor(float(self.scheduler.init_noise_sigma), dtype=torch.float32)
        spacing = self.scheduler.config.get("timestep_spacing", "linspace")
        return start if spacing in ("linspace", "trailing") else (start**2 + 1).sqrt()

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The UNet's timestep at each ``sigma`` (1-D): the scheduler's own at its noise levels,
        else EDM's ``c_noise`` or the training timestep by log-sigma interpolation."""
        values = sigma.detach().float().cpu()
        if all(value in self._timesteps for value in values.tolist()):
            return torch.tensor([self._timesteps[v] for v in values.tolist()], dtype=torch.float32)
        if self.edm:
            return self.scheduler.precondition_noise(values).float()
        log_sigma = values.clamp_min(1e-8).log().numpy()
        steps = np.interp(log_sigma, self._log_sigmas, np.arange(len(self._log_sigmas)))
        return torch.as_tensor(steps, dtype=torch.float32)

    def model_input(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``c_in(sigma) x``; ``sigma`` shaped ``(B, 1, 1, 1)``."""
        if self.edm:
            return self.scheduler.precondition_inputs(x, sigma)
        return x / (sigma**2 + 1).sqrt()

    def x0(self, x: torch.Tensor, sigma: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The denoised prediction from the UNet's ``output`` at ``x``, ``sigma``."""
        if self.edm:
            return self.scheduler.precondition_outputs(x, output, sigma)
        if self.prediction == "epsilon":
            return x - sigma * output
        if self.prediction == "v_prediction":
            return x / (sigma**2 + 1) - sigma / (sigma**2 + 1).sqrt() * output
        return output

    def training_sigmas(self) -> torch.Tensor:
        """Every sigma a discrete model was trained at, ascending with timestep (fine-tuning)."""
        if self.edm:
            raise WdiffError(f"fine-tuning a model with {self.name} is not supported")
        return torch.from_numpy(np.exp(self._log_sigmas)).to(torch.float32)
