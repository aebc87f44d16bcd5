"""Workload deployment: turning the controller's workload events into helm releases.

The modules here that have no I/O (:mod:`.naming`, :mod:`.repository`, :mod:`.values`,
:mod:`.signals`) hold the rules (redaction is the leaf
:mod:`communication_operator.redaction`); the helm runner and the deploy service build on
them.
"""
