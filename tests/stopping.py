"""Stop a library run mid-way, as Ctrl-C would, without a signal."""

import contextlib

from wdiff.feedback import Feedback


def stopped_after(count: int) -> Feedback:
    """Feedback whose frame bar stops the run (as Ctrl-C does) once ``count`` frames are done."""

    @contextlib.contextmanager
    def frame_bars(description, total, steps):
        done = [0]

        def advance(n=1):
            done[0] += n
            if done[0] >= count:
                raise KeyboardInterrupt

        yield advance, (lambda k: None)

    return Feedback(frame_bars=frame_bars)
