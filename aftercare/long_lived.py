"""What a server process builds at start-up, kept out of the garbage collector's sight."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move what start-up built (modules, the table metadata, the models' schemas, the compiled
    journeys) out of the garbage collector's sight: every collection of the oldest generation would
    otherwise walk them all again, though they live as long as the process. In the API such a
    collection walked about 400,000 objects and paused every request for about 200 ms."""
    gc.collect()
    gc.freeze()
