"""This process's share of a batch when a launcher started several (``accelerate launch
--num_processes N -m wdiff ...``, ``torchrun``; on a machine without GPUs ``accelerate launch
--multi_gpu``, since ``--cpu`` starts one process unless mpirun runs them): Accelerate's
``PartialState`` gives its index, the number of processes and its device (``cuda:LOCAL_RANK``,
or the CPU with gloo), splits the
inputs by index (``split_between_processes``: contiguous runs, the same on every process) and
gathers what became of them. Without a launcher (``WORLD_SIZE`` unset or 1) there is one process
and Accelerate is not imported."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

# How long a process that finished its share waits for the others at the final gather (the
# process group's timeout, 30 minutes by default, would end a batch of long videos).
WAIT_FOR_OTHERS = timedelta(days=30)


def launched() -> bool:
    """Started by a launcher with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


@dataclass
class Processes:
    """``index`` of ``count`` processes; ``device`` is the launcher's for this process (None
    without a launcher)."""

    index: int = 0
    count: int = 1
    device: torch.device | None = None
    state: Any = None  # accelerate.PartialState

    @classmethod
    def start(cls, cpu: bool = False) -> Processes:
        """Join the launcher's process group (gloo on the CPU: with ``cpu``, or where torch sees
        no GPU), or one process alone."""
        if not launched():
            return cls()
        from accelerate import PartialState

        cpu = cpu or not torch.cuda.is_available()  # else Accelerate runs each process alone
        state = PartialState(cpu=cpu, timeout=WAIT_FOR_OTHERS)
        device = torch.device("cpu") if state.device.type == "cpu" else state.device  # not cpu:0
        return cls(state.process_index, state.num_processes, device, state)

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def share(self, count: int) -> list[int]:
        """This process's indices of ``count`` inputs."""
        if self.state is None:
            return list(range(count))
        with self.state.split_between_processes(list(range(count))) as mine:
            return list(mine)

    def gather(self, items: list) -> list:
        """Every process's ``items`` (picklable), concatenated in process order, on each."""
        if self.state is None:
            return items
        from accelerate.utils import gather_object

        return gather_object(items)

    def finish(self) -> None:
        """Leave the process group (all processes, after the gather)."""
        if self.state is not None:
            self.state.destroy_process_group()
