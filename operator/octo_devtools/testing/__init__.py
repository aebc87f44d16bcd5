"""pytest plugins for the project's tests: the controller simulator and the local cluster."""
