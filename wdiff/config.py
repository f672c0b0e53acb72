"""Run settings of ``wdiff upscale`` / ``inpaint`` and their YAML presets.

A setting's value comes from, in rising priority: the defaults below, the preset
(``--preset NAME`` from ``wdiff/presets/NAME.yaml``, or ``--preset FILE.yaml``), and the options
given on the command line.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from wdiff.errors import WdiffError

PRESETS_DIR = Path(__file__).parent / "presets"
SAMPLERS = ("warped", "batch-consistent")
PRESET_ONLY = ("description",)
# settings' old names -> (new name, its values): a preset using an old one is refused
RENAMED = {"method": ("sampler", " or ".join(SAMPLERS))}
MAX_MASK_PIXELS = 256  # --mask-dilate and --feather
# settings that only one task reads (the others decide both tasks' outputs)
TASK_ONLY = {
    "scale": "sr",
    "noise_level": "sr",  # the SD x4 upscaler's
    "mask_dilate": "inpaint",
    "feather": "inpaint",
}


@dataclass
class RestoreSettings:
    """Everything that decides the output (the report records it)."""

    task: str = "sr"
    scale: int = 8
    model: str = "builtin"
    noise: str = "gp"
    gp_extend: bool = False
    sampler: str = "warped"  # warped (Algorithm 1) or batch-consistent (Kwon & Ye)
    steps: int = 25
    solver: str = "euler"
    guidance: float = 1.0
    guidance_mode: str = "full"
    guidance_fraction: float = 1.0
    first_guidance: float = 0.0
    window: int = 8
    cg_steps: int = 5
    eta: float = 0.15
    prompt: str | None = None
    mask_dilate: int = 0  # inpainting: pixels the hole grows by
    feather: int = 0  # inpainting: the result fades into the input over 2x this inside the hole
    flow: str = "dis"
    raft_model: str = "large"  # --flow raft: torchvision's raft_large or raft_small
    seed: int = 0
    crf: int = 18
    codec: str | None = None  # libx264, libx265, ffv1; None: the input's (else libx264)
    pix_fmt: str | None = None  # None: the input's bit depth and chroma subsampling
    dtype: str = "bf16"  # SDXL UNet and text encoders (the VAE runs in fp32)
    variant: str = "auto"  # diffusers folders: weights variant (fp16, ...); auto: detected
    vae_tiling: bool = False
    vae_slicing: bool = False
    cpu_offload: bool = False
    noise_level: int = 20  # SD x4 upscaler: the low-res frame's noise level (its pipeline's)
    tile: int | str = "auto"  # output pixels per tile side, 0 = whole frames, or "auto"
    tile_overlap: int = 32  # output pixels shared by neighbouring tiles

    def validate(self) -> None:
        """Raise WdiffError naming the first setting that is out of range; normalises ``tile``."""
        if self.task not in ("sr", "inpaint"):
            raise WdiffError(f"task {self.task}: use sr or inpaint")
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise WdiffError(f"{field.name} {value}: give a finite number")
        self._check_choices()
        self._check_ranges()
        self._check_tiles()

    def _check_choices(self) -> None:
        from wdiff.noise import METHODS as NOISES

        if self.task == "sr" and self.scale not in (2, 4, 8):
            raise WdiffError(f"--scale {self.scale}: use 2, 4 or 8")
        if self.noise not in NOISES:
            raise WdiffError(f"--noise {self.noise}: use one of {', '.join(NOISES)}")
        if self.sampler not in SAMPLERS:
            raise WdiffError(f"--sampler {self.sampler}: use one of {', '.join(SAMPLERS)}")
        if self.guidance_mode not in ("full", "cheap"):
            raise WdiffError(f"--guidance-mode {self.guidance_mode}: use full or cheap")
        if self.raft_model not in ("large", "small"):
            raise WdiffError(f"--raft-model {self.raft_model}: use large or small")
        if self.solver not in ("euler", "heun"):
            raise WdiffError(f"--solver {self.solver}: use euler or heun")
        if self.dtype not in ("bf16", "fp16", "fp32"):
            raise WdiffError(f"--dtype {self.dtype}: use bf16, fp16 or fp32")
        if self.codec is not None and self.codec not in ("libx264", "libx265", "ffv1"):
            raise WdiffError(f"--codec {self.codec}: use libx264, libx265 or ffv1")

    def _check_ranges(self) -> None:
        if self.steps < 1:
            raise WdiffError(f"--steps {self.steps}: use at least 1")
        if not self.variant or not self.variant.replace("_", "").isalnum():
            raise WdiffError(f"--variant {self.variant!r}: use auto or a name such as fp16")
        if self.noise_level < 0:
            raise WdiffError(f"--noise-level {self.noise_level}: use 0 or more")
        if self.guidance < 0 or self.first_guidance < 0:
            raise WdiffError("--guidance and --first-guidance must be >= 0")
        if not 0 <= self.guidance_fraction <= 1:
            raise WdiffError(f"--guidance-fraction {self.guidance_fraction}: use 0 to 1")
        if self.window < 1 or self.cg_steps < 0 or not 0 <= self.eta <= 1:
            raise WdiffError("window >= 1, cg_steps >= 0 and 0 <= eta <= 1, please")
        if not 0 <= self.crf <= 51:
            raise WdiffError(f"crf {self.crf}: use 0 (lossless) to 51")
        for name in ("mask_dilate", "feather"):
            if not 0 <= getattr(self, name) <= MAX_MASK_PIXELS:
                option = "--" + name.replace("_", "-")
                raise WdiffError(f"{option} {getattr(self, name)}: use 0 to {MAX_MASK_PIXELS}")

    def _check_tiles(self) -> None:
        self.tile = parse_tile(self.tile)  # "512" (from a YAML string, say) -> 512
        fixed = self.tile != "auto"
        if self.tile and (self.tile_overlap < 2 or (fixed and self.tile < 2 * self.tile_overlap)):
            raise WdiffError(
                f"--tile {self.tile} --tile-overlap {self.tile_overlap}: the overlap must be at "
                "least 2 and at most half the tile"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    def task_dict(self) -> dict:
        """The settings this task reads (``TASK_ONLY`` ones of the other task left out): what a
        report records."""
        return {
            key: value
            for key, value in asdict(self).items()
            if TASK_ONLY.get(key, self.task) == self.task
        }


SETTING_NAMES = tuple(f.name for f in fields(RestoreSettings))


def parse_tile(value) -> int | str:
    """``--tile`` (or a preset's ``tile``): "auto", 0 (whole frames) or output pixels per tile
    side, as "auto" or an int; anything else raises ``WdiffError``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        if text.isdigit():
            return int(text)
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise WdiffError(
        f"--tile {value}: use auto, 0 (whole frames) or the output pixels per tile side"
    )


def preset_names() -> list[str]:
    """The presets installed with the package."""
    return sorted(path.stem for path in PRESETS_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """``NAME`` of an installed preset, or a path to a YAML file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise WdiffError(f"--preset {name}: no such file; check the path")
        return path
    installed = PRESETS_DIR / f"{name}.yaml"
    if not installed.is_file():
        raise WdiffError(
            f"--preset {name}: no such preset; use one of {', '.join(preset_names())} "
            "or a .yaml file"
        )
    return installed


def load_preset(name: str) -> dict:
    """The settings a preset sets (checked against ``RestoreSettings``'s fields and types)."""
    path = preset_path(name)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise WdiffError(
            f"{path}: not valid YAML ({_yaml_problem(error)}); fix the file"
        ) from error
    if not isinstance(values, dict):
        raise WdiffError(f"{path}: a preset is a mapping of setting: value; fix the file")
    for key in values:
        if key in RENAMED:
            new, takes = RENAMED[key]
            raise WdiffError(
                f"{path}: setting {key!r} is now {new!r} ({takes}); rename it in the file"
            )
    defaults = RestoreSettings()
    for key, value in values.items():
        if key in PRESET_ONLY:
            continue
        if key not in SETTING_NAMES:
            raise WdiffError(f"{path}: unknown setting {key!r}; known: {', '.join(SETTING_NAMES)}")
        if key == "tile":
            try:
                values[key] = parse_tile(value)
            except WdiffError as error:
                raise WdiffError(f"{path}: tile should be auto or an int, not {value!r}") from error
            continue
        expected = type(getattr(defaults, key))
        if key == "prompt":
            expected = str
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise WdiffError(
                f"{path}: {key} should be {expected.__name__}, not {value!r}; fix the file"
            )
        values[key] = value
    return {key: value for key, value in values.items() if key not in PRESET_ONLY}


def _yaml_problem(error: Exception) -> str:
    """One line for a YAML error (PyYAML's own message quotes the file over several lines)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def merge_settings(task: str, preset: str | None, given: dict) -> RestoreSettings:
    """Defaults < preset < ``given`` (the options set on the command line), validated."""
    values = load_preset(preset) if preset else {}
    if values.get("task", task) != task:
        command = "upscale" if values["task"] == "sr" else "inpaint"
        raise WdiffError(f"--preset {preset}: is a preset for `wdiff {command}`")
    settings = RestoreSettings(**(values | given | {"task": task}))
    if settings.model == "sdxl":
        raise WdiffError(
            f"--preset {preset}: needs --model /path/to/sdxl (a local diffusers SDXL folder)"
        )
    settings.validate()
    return settings


def settings_yaml(settings: RestoreSettings, preset: str | None, extra: dict) -> str:
    """The merged settings as YAML, for ``--print-config``."""
    document = {"preset": preset} | extra | settings.task_dict()
    return yaml.safe_dump(document, sort_keys=False)
