"""The reference feature service: feature retrieval, a small model and JSON over HTTP, to aim the load at."""
