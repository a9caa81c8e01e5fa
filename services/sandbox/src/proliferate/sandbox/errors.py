"""The sandbox service's error tree (sandbox-provider.md §4.2), one stable code each.

DomainError (kit)
├── InvalidArgument          INVALID_ARGUMENT
│   ├── InvalidRepoSpec          invalid_repo_spec
│   ├── ReservedEnvKey           reserved_env_key
│   ├── UnsafePath               unsafe_path
│   ├── LimitsExceeded           limits_exceeded
│   └── InvalidRequest           invalid_argument
├── NotFound                 NOT_FOUND
│   └── SandboxNotFound          sandbox_not_found
├── FailedPrecondition       FAILED_PRECONDITION
│   ├── CapabilityNotSupported   capability_unsupported
│   ├── ProviderDisabled         provider_disabled
│   ├── ProviderMismatch         provider_mismatch
│   ├── SnapshotMissing          snapshot_missing (detail not_found | expired | deleted)
│   ├── ArtifactSessionMismatch  artifact_session_mismatch
│   ├── SandboxNotReady          sandbox_not_ready
│   ├── SandboxTerminated        sandbox_terminated
│   ├── WrongHost                wrong_host
│   └── VersionKeyStale          version_key_stale
├── Aborted                  ABORTED
│   └── OperationInProgress      operation_in_progress (retry_after_ms)
├── ResourceExhausted        RESOURCE_EXHAUSTED
│   ├── LocalCapacity            local_capacity
│   └── PortRangeExhausted       port_range_exhausted
├── Unavailable              UNAVAILABLE
│   └── ProviderUnavailable      provider_unavailable (retryable)
├── DeadlineExceeded         DEADLINE_EXCEEDED
│   └── EnsureTimedOut           ensure_timed_out
└── (INTERNAL)
    ├── BootFailed               boot_failed (redacted step and message)
    └── SnapshotFailed           snapshot_failed
"""

from __future__ import annotations

from typing import Any

from proliferate.kit.errors import (
    Aborted,
    DeadlineExceeded,
    DomainError,
    ErrorKind,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)


class InvalidRepoSpec(InvalidArgument):
    code = "invalid_repo_spec"
    message = "invalid repo spec"


class ReservedEnvKey(InvalidArgument):
    code = "reserved_env_key"
    message = "env holds a reserved key"


class UnsafePath(InvalidArgument):
    code = "unsafe_path"
    message = "unsafe path"


class LimitsExceeded(InvalidArgument):
    code = "limits_exceeded"
    message = "a limit is exceeded"


class InvalidRequest(InvalidArgument):
    code = "invalid_argument"
    message = "invalid request"


class SandboxNotFound(NotFound):
    code = "sandbox_not_found"
    message = "sandbox not found"


class CapabilityNotSupported(FailedPrecondition):
    code = "capability_unsupported"
    message = "the provider does not support this"


class ProviderDisabled(FailedPrecondition):
    code = "provider_disabled"
    message = "the provider is not enabled"


class ProviderMismatch(FailedPrecondition):
    code = "provider_mismatch"
    message = "the artifact or sandbox belongs to another provider"


class SnapshotMissing(FailedPrecondition):
    code = "snapshot_missing"
    message = "the snapshot cannot be restored"


class ArtifactSessionMismatch(FailedPrecondition):
    code = "artifact_session_mismatch"
    message = "this snapshot restores only into its own session"


class SandboxNotReady(FailedPrecondition):
    code = "sandbox_not_ready"
    message = "the sandbox is not ready"


class SandboxTerminated(FailedPrecondition):
    code = "sandbox_terminated"
    message = "the sandbox is terminated"


class WrongHost(FailedPrecondition):
    code = "wrong_host"
    message = "the sandbox lives on another host"


class VersionKeyStale(FailedPrecondition):
    code = "version_key_stale"
    message = "the version key is not the current one"


class OperationInProgress(Aborted):
    code = "operation_in_progress"
    message = "another operation holds this sandbox; retry"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        details.setdefault("retry_after_ms", 1000)
        super().__init__(message, **details)


class LocalCapacity(ResourceExhausted):
    code = "local_capacity"
    message = "this host runs its maximum number of sandboxes"


class PortRangeExhausted(ResourceExhausted):
    code = "port_range_exhausted"
    message = "no free port block on this host"


class ProviderUnavailable(Unavailable):
    code = "provider_unavailable"
    message = "the provider is unavailable; retry"


class EnsureTimedOut(DeadlineExceeded):
    code = "ensure_timed_out"
    message = "the sandbox did not become ready in time"


class BootFailed(DomainError):
    kind = ErrorKind.INTERNAL
    code = "boot_failed"
    message = "the sandbox failed to boot"


class SnapshotFailed(DomainError):
    kind = ErrorKind.INTERNAL
    code = "snapshot_failed"
    message = "the snapshot failed"
