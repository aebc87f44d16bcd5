"""Helpers shared by the devcluster tests."""
