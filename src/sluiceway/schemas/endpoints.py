"""Batch endpoints and batch deployments, in Azure ML's YAML and REST shape."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sluiceway.runtime.output_formats import OutputFormat
from sluiceway.schemas.common import ENDPOINT_NAME_RE, CreationContext, Open, Strict
from sluiceway.schemas.environments import EnvironmentBuildOut

DEFAULT_OUTPUT_FILE_NAME = OutputFormat.TEXT.default_file_name


def _check_endpoint_name(value: str) -> str:
    if not (3 <= len(value) <= 32) or not ENDPOINT_NAME_RE.fullmatch(value):
        raise ValueError(
            f"name {value!r} is not valid: use 3-32 letters, digits and '-', starting with a "
            "letter and not ending with '-'"
        )
    return value


class EndpointDefaults(Strict):
    deployment_name: str | None = None


class BatchEndpointCreate(Strict):
    """``PUT /batch-endpoints/{name}``: create or update an endpoint."""

    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    auth_mode: Literal["aad_token"] = "aad_token"
    defaults: EndpointDefaults = Field(default_factory=EndpointDefaults)
    properties: dict[str, str] = Field(default_factory=dict)

    _name = field_validator("name")(_check_endpoint_name)


class BatchEndpointPatch(Strict):
    """``PATCH /batch-endpoints/{name}``: the fields given change; ``null`` clears one."""

    description: str | None = None
    tags: dict[str, str] | None = None
    defaults: EndpointDefaults | None = None


class BatchEndpointOut(Open):
    id: str
    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    auth_mode: str = "aad_token"
    defaults: EndpointDefaults = Field(default_factory=EndpointDefaults)
    properties: dict[str, str] = Field(default_factory=dict)
    scoring_uri: str
    openapi_uri: str | None = None
    provisioning_state: str = "Succeeded"
    creation_context: CreationContext | None = None


class OutputAction(StrEnum):
    APPEND_ROW = "append_row"
    SUMMARY_ONLY = "summary_only"


class LoggingLevel(StrEnum):
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"


class RetrySettings(Strict):
    max_retries: int = Field(default=3, ge=0)
    timeout: int = Field(default=30, ge=1, description="seconds per mini-batch")


class ModelDeploymentSettings(Strict):
    """``settings`` of a ``type: model`` deployment, with Azure's defaults."""

    max_concurrency_per_instance: int = Field(default=1, ge=1)
    mini_batch_size: int = Field(default=10, ge=1)
    output_action: OutputAction = OutputAction.APPEND_ROW
    output_file_name: str | None = None
    retry_settings: RetrySettings = Field(default_factory=RetrySettings)
    error_threshold: int = Field(default=-1, ge=-1)
    logging_level: LoggingLevel = LoggingLevel.INFO
    environment_variables: dict[str, str] = Field(default_factory=dict)
    output_format: OutputFormat = Field(
        default=OutputFormat.TEXT,
        description="Sluiceway's own: how append_row writes its rows: text (Azure's "
        "space-separated lines), parquet or jsonl",
    )
    include_input_columns: bool = Field(
        default=False,
        description="Sluiceway's own: with output_format parquet or jsonl, an MLflow "
        "deployment's rows carry the input's columns too",
    )

    @field_validator("output_format", mode="before")
    @classmethod
    def _known_format(cls, value: Any) -> Any:
        accepted = [f.value for f in OutputFormat]
        if value not in accepted:
            raise ValueError(
                f"settings.output_format {value!r} is not accepted; accepted: "
                f"{', '.join(accepted)} (text is Azure's space-separated lines)"
            )
        return value

    @field_validator("output_action", mode="before")
    @classmethod
    def _accept_rest_spelling(cls, value: Any) -> Any:
        # REST spells these AppendRow / SummaryOnly.
        if isinstance(value, str):
            return {"appendrow": "append_row", "summaryonly": "summary_only"}.get(
                value.replace("_", "").lower(), value
            )
        return value

    @field_validator("output_file_name")
    @classmethod
    def _plain_file_name(cls, value: str | None) -> str | None:
        if value is not None and (
            not value or "/" in value or "\\" in value or value in {".", ".."}
        ):
            raise ValueError(
                f"output_file_name {value!r} must be a plain file name, without folders"
            )
        return value

    @model_validator(mode="after")
    def _summary_only_has_no_file(self) -> ModelDeploymentSettings:
        if self.output_action is OutputAction.SUMMARY_ONLY and self.output_file_name is not None:
            raise ValueError(
                "When output_action is set to summary_only, the output_file_name need not to be "
                "specified."
            )
        if self.output_action is OutputAction.SUMMARY_ONLY and (
            self.output_format is not OutputFormat.TEXT or self.include_input_columns
        ):
            raise ValueError(
                "settings.output_format and settings.include_input_columns apply to "
                "output_action append_row; summary_only writes no rows."
            )
        if self.include_input_columns and self.output_format is OutputFormat.TEXT:
            raise ValueError(
                "settings.include_input_columns needs settings.output_format parquet or jsonl; "
                "the text format keeps Azure's columns (row prediction file_name)."
            )
        return self

    @property
    def effective_output_file_name(self) -> str:
        return self.output_file_name or self.output_format.default_file_name


DEFAULT_MAX_CONCURRENT_STEPS = 4


class PipelineDeploymentSettings(Strict):
    """``settings`` of a ``type: pipeline`` deployment (Azure's pipeline job settings)."""

    default_compute: str | None = Field(default=None, description="kept; steps run here")
    default_datastore: str | None = Field(
        default=None, description="where outputs go by default (default: workspaceblobstore)"
    )
    continue_on_step_failure: bool = Field(
        default=False,
        description="keep running the steps that do not need a failed one; the job still fails",
    )
    force_rerun: bool | None = Field(
        default=None, description="accepted; every step always runs (results are not reused)"
    )
    max_concurrent_steps: int = Field(
        default=DEFAULT_MAX_CONCURRENT_STEPS,
        ge=1,
        le=64,
        description="how many independent steps of one job run at the same time",
    )


def _settings_for_type(value: Any, _handler: Any, info: ValidationInfo) -> Any:
    """Check ``settings`` against the shape of the deployment's ``type``."""
    shape: type[ModelDeploymentSettings] | type[PipelineDeploymentSettings] = (
        PipelineDeploymentSettings
        if info.data.get("type") == "pipeline"
        else ModelDeploymentSettings
    )
    if isinstance(value, shape):
        return value
    if isinstance(value, ModelDeploymentSettings | PipelineDeploymentSettings):
        value = value.model_dump(exclude_unset=True)
    if value is None:
        value = {}
    return shape.model_validate(value)


class CodeConfiguration(Strict):
    code: str = Field(description="datastore URI of the uploaded code folder")
    scoring_script: str


class DeploymentResources(Strict):
    instance_count: int = Field(default=1, ge=1)


class BatchDeploymentCreate(Strict):
    """``PUT /batch-endpoints/{endpoint}/deployments/{name}``: create or update a deployment.

    ``model`` is a registered model's reference (``azureml:name:version``,
    ``azureml:name@latest`` or its id); clients register inline models first.
    """

    name: str
    endpoint_name: str
    type: Literal["model", "pipeline"] = "model"
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    model: str | None = None
    code_configuration: CodeConfiguration | None = None
    environment: str | dict[str, Any] | None = None
    compute: str | None = None
    resources: DeploymentResources = Field(default_factory=DeploymentResources)
    settings: ModelDeploymentSettings | PipelineDeploymentSettings = Field(
        default_factory=ModelDeploymentSettings,
        validate_default=True,
        description="ModelDeploymentSettings for type model, PipelineDeploymentSettings for "
        "type pipeline",
    )
    component: str | dict[str, Any] | None = None
    properties: dict[str, str] = Field(default_factory=dict)

    _name = field_validator("name")(_check_endpoint_name)
    _settings = field_validator("settings", mode="wrap")(_settings_for_type)


class BatchDeploymentOut(Open):
    id: str
    name: str
    endpoint_name: str
    type: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    model: str | None = None
    code_configuration: CodeConfiguration | None = None
    environment: str | dict[str, Any] | None = None
    compute: str | None = None
    resources: DeploymentResources = Field(default_factory=DeploymentResources)
    settings: ModelDeploymentSettings | PipelineDeploymentSettings = Field(
        default_factory=ModelDeploymentSettings, validate_default=True
    )
    component: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    provisioning_state: str = "Succeeded"  # Creating while its environment builds; or Failed
    environment_build: EnvironmentBuildOut | None = None
    creation_context: CreationContext | None = None
    runs_on: str | None = None  # where its jobs run now, from its compute (model deployments)

    _settings = field_validator("settings", mode="wrap")(_settings_for_type)
