"""The inf3kit construct library: typed keyword props, secure defaults, no spec format needed."""

from inf3kit._node import use_wheel_node

use_wheel_node()

from inf3kit.constructs.ami_pipeline import NeuronAmiPipeline  # noqa: E402
from inf3kit.constructs.bundle import ModelBundle  # noqa: E402
from inf3kit.constructs.endpoint_access import DataCapture, ModelData  # noqa: E402
from inf3kit.constructs.endpoint_base import EndpointBase, MetricOptions  # noqa: E402
from inf3kit.constructs.endpoint_image import EndpointImage  # noqa: E402
from inf3kit.constructs.endpoint_rollout import EndpointRollout  # noqa: E402
from inf3kit.constructs.endpoint_scaling import (  # noqa: E402
    ConcurrencyScaling,
    EndpointScaling,
    ScaleDownSchedule,
)
from inf3kit.constructs.fleet_group import NO_FALLBACK_WARNING_ID  # noqa: E402
from inf3kit.constructs.fleet_lifecycle import WarmPool  # noqa: E402
from inf3kit.constructs.fleet_metrics import (  # noqa: E402
    NEURON_METRIC_NAMESPACE,
    NEURONCORE_UTILIZATION_METRIC,
    FleetBase,
)
from inf3kit.constructs.hardware_checks import PROVISIONAL_WARNING_ID  # noqa: E402
from inf3kit.constructs.llm_endpoint import LlmEndpoint  # noqa: E402
from inf3kit.constructs.llm_fleet import LlmFleet  # noqa: E402
from inf3kit.constructs.llm_servers import (  # noqa: E402
    LLM_METRIC_NAMESPACE,
    REQUESTS_WAITING_METRIC,
)
from inf3kit.constructs.model_artifacts import ModelArtifacts  # noqa: E402
from inf3kit.constructs.monitored import MonitoredEndpoint, MonitoredFleet  # noqa: E402
from inf3kit.constructs.network import ServiceNetwork  # noqa: E402
from inf3kit.constructs.neuron_ami import FixedImage, NeuronAmi, PipelineImage  # noqa: E402
from inf3kit.constructs.neuron_endpoint import NeuronEndpoint  # noqa: E402
from inf3kit.constructs.neuron_fleet import NeuronFleet  # noqa: E402
from inf3kit.constructs.runtime_install import RuntimeWheel  # noqa: E402
from inf3kit.constructs.runtime_settings import RuntimeSettings  # noqa: E402
from inf3kit.constructs.service_monitoring import ServiceMonitoring  # noqa: E402
from inf3kit.constructs.validation import ConstructError  # noqa: E402

__all__ = [
    "LLM_METRIC_NAMESPACE",
    "NEURONCORE_UTILIZATION_METRIC",
    "NEURON_METRIC_NAMESPACE",
    "NO_FALLBACK_WARNING_ID",
    "PROVISIONAL_WARNING_ID",
    "REQUESTS_WAITING_METRIC",
    "ConcurrencyScaling",
    "ConstructError",
    "DataCapture",
    "EndpointBase",
    "EndpointImage",
    "EndpointRollout",
    "EndpointScaling",
    "FixedImage",
    "FleetBase",
    "LlmEndpoint",
    "LlmFleet",
    "MetricOptions",
    "ModelArtifacts",
    "ModelBundle",
    "ModelData",
    "MonitoredEndpoint",
    "MonitoredFleet",
    "NeuronAmi",
    "NeuronAmiPipeline",
    "NeuronEndpoint",
    "NeuronFleet",
    "PipelineImage",
    "RuntimeSettings",
    "RuntimeWheel",
    "ScaleDownSchedule",
    "ServiceMonitoring",
    "ServiceNetwork",
    "WarmPool",
]
