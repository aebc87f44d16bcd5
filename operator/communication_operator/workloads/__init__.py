"""Workload deployment: turning the controller's workload events into helm releases.

The modules here that have no I/O (:mod:`.naming`, :mod:`.repository`, :mod:`.values`,
:mod:`.signals`, :mod:`.redaction`) hold the rules; the helm runner and the deploy service build on
them.
"""
