"""What crosses the wire between the operator and the Communication Controller.

DTOs mirror the C# records of ``Meshmakers.Octo.Communication.Contracts`` (baseline r3.4.17 plus
the later additive fields); :mod:`.methods` names every hub method and its argument layout.
"""

from communication_operator.contracts.dtos import (
    CommunicationState,
    DeployedPoolDto,
    DeploymentState,
    OperatorDeployedPoolReportDto,
    PoolEnvironment,
    ScaleWorkloadDto,
    ValueOverrideDto,
    WireModel,
    WorkloadDeployedDto,
    WorkloadDeploymentProgressDto,
    WorkloadDeploymentStatusDto,
    WorkloadScaleStatusDto,
    WorkloadType,
    WorkloadUndeployedDto,
)
from communication_operator.contracts.methods import (
    CLIENT_METHODS,
    SERVER_METHODS,
    ClientMethod,
    ContractError,
    InvalidPush,
    MethodSignature,
    ServerMethod,
    check_arity,
    decode_arguments,
    decode_result,
    encode_arguments,
    signature_of,
)
from communication_operator.contracts.validation import PushIds

__all__ = [
    "CLIENT_METHODS",
    "SERVER_METHODS",
    "ClientMethod",
    "CommunicationState",
    "ContractError",
    "DeployedPoolDto",
    "DeploymentState",
    "InvalidPush",
    "MethodSignature",
    "OperatorDeployedPoolReportDto",
    "PoolEnvironment",
    "PushIds",
    "ScaleWorkloadDto",
    "ServerMethod",
    "ValueOverrideDto",
    "WireModel",
    "WorkloadDeployedDto",
    "WorkloadDeploymentProgressDto",
    "WorkloadDeploymentStatusDto",
    "WorkloadScaleStatusDto",
    "WorkloadType",
    "WorkloadUndeployedDto",
    "check_arity",
    "decode_arguments",
    "decode_result",
    "encode_arguments",
    "signature_of",
]
