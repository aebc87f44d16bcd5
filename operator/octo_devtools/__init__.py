"""Development tools: controller simulator, local control plane, fake kubelet."""
