"""The deploy pipeline's named steps, one job per module, in the order :mod:`..deploy` runs them.

validate → repository → values files (:mod:`..valuesdirs`) → recover → resolve version (and the
replica pin) → dry run → Secret → watched upgrade → report. Each step raises a
:class:`~..errors.WorkloadError` subclass for its failures and keeps its message formats beside it.
"""
