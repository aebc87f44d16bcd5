"""Local Kubernetes control plane for tests, benchmarks and the demo.

etcd 3.4 + kube-apiserver/kube-controller-manager 1.20.2 (built once from Debian source into a cache),
helm 4.3.1 / helm 3.19.0 / kubectl 1.37.1 from PyPI wheels, and a fake kubelet that writes the pod
statuses and events a real kubelet and scheduler would. See docs/local-cluster.md.
"""
