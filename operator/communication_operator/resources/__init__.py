"""Files shipped inside the package (the CommunicationPool CRD); read them with :func:`read_text`."""

from importlib.resources import files

CRD_FILE = "communicationpool.yaml"


def read_text(name: str) -> str:
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def communication_pool_crd() -> str:
    """The CommunicationPool CRD manifest, exactly as ``crds/communicationpool.yaml``."""
    return read_text(CRD_FILE)
