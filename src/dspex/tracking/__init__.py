"""The front ends users call: ``dspex.experiment(...)`` and ``dspex.autolog()``.

They sit on top of the journal, the EvaluationHarness and the optimizer hooks, and put
an :class:`~dspex.tracking.listener.ExperimentListener` where DSPy's callback finds it.
"""

from dspex.tracking.autolog import autolog
from dspex.tracking.experiment import ExperimentRun, experiment
from dspex.tracking.listener import ExperimentListener

__all__ = ["ExperimentListener", "ExperimentRun", "autolog", "experiment"]
