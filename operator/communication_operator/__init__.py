"""The Communication Operator: connects a cluster to an OctoMesh Communication Controller."""
