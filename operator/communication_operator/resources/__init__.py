"""Files shipped inside the package (the CommunicationPool and DeploymentSite CRDs); see :func:`read_text`."""

from importlib.resources import files

CRD_FILE = "communicationpool.yaml"


def read_text(name: str) -> str:
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def communication_pool_crd() -> str:
    """The CommunicationPool CRD manifest, exactly as ``crds/communicationpool.yaml``."""
    return read_text(CRD_FILE)


DEPLOYMENT_SITE_CRD_FILE = "deploymentsite.yaml"


def deployment_site_crd() -> str:
    """The DeploymentSite CRD manifest, exactly as ``crds/deploymentsite.yaml``."""
    return read_text(DEPLOYMENT_SITE_CRD_FILE)
