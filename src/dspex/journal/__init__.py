"""The ExperimentJournal: holds a running experiment and writes its trials as they finish."""

from dspex.journal.journal import ExperimentJournal

__all__ = ["ExperimentJournal"]
