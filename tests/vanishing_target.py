"""A python target that imports on one stage and not on the next, then again on the one after (a service gone for a while).

Importing it fails while the marker file $MLSTRESS_GONE_MARKER exists, and the
failed import removes the marker; every call creates it. So a stage runs, the
next stage's workers cannot import it, and the stage after runs again.
"""

import os
from pathlib import Path

_MARKER = Path(os.environ["MLSTRESS_GONE_MARKER"])
if _MARKER.exists():
    _MARKER.unlink(missing_ok=True)
    raise FileNotFoundError(f"model file {_MARKER.name} is gone")


def features(user_id: str) -> dict:
    _MARKER.touch()
    return {"user_id": user_id}
