"""Restoring a video (upscale, inpaint).

``plan_restore`` and ``run_restore`` (``job``) restore one file as ``wdiff upscale`` and
``wdiff inpaint`` do; ``restore`` (``loop``) is the frame loop over a decoded input and its
flows: per-frame inputs (``frame_inputs``), the tiling policy (``tiles``), the warped or
batch-consistent sampling (``runs``), the report rows (``report``) and the resume checkpoint
(``checkpoint``).
"""

from wdiff.restore.job import RestoreJob, RestoreResult, plan_restore, run_restore
from wdiff.restore.loop import restore
from wdiff.restore.models import load_denoiser
from wdiff.restore.report import report_paths, summarise, write_report

__all__ = [
    "RestoreJob",
    "RestoreResult",
    "load_denoiser",
    "plan_restore",
    "report_paths",
    "restore",
    "run_restore",
    "summarise",
    "write_report",
]
