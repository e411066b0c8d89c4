"""mlstress-tui: prove the serving system holds production load before real users arrive."""

__version__ = "0.1.0"
