"""The synthetic database generator: production-shaped users and events, streamed into SQLite."""

from mlstress_tui.synth.generator import GenerateResult, generate_sqlite
from mlstress_tui.synth.params import GenerateParams
from mlstress_tui.synth.schema import read_meta

__all__ = ["GenerateParams", "GenerateResult", "generate_sqlite", "read_meta"]
