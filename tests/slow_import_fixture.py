"""A target module that is slow, leaves a mark, or ends its process when imported (start-up tests; imported by name)."""

import os
import time

if os.environ.get("MLSTRESS_IMPORT_MARKS"):
    with open(os.environ["MLSTRESS_IMPORT_MARKS"], "a", encoding="utf-8") as marks:
        marks.write(f"{os.getpid()}\n")
time.sleep(float(os.environ.get("MLSTRESS_IMPORT_DELAY", "0")))
if os.environ.get("MLSTRESS_IMPORT_EXIT"):
    os._exit(int(os.environ["MLSTRESS_IMPORT_EXIT"]))  # a native crash or abort in the import: no word, no traceback


def features(user_id: str) -> dict:
    return {"user_id": user_id}
