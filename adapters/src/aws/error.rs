//! The one table from AWS Secrets Manager's answers to [`ErrorKind`].
//!
//! Matches the SDK's typed errors (the operation's error variants, the `SdkError` variants,
//! and the error code AWS sends as typed metadata), never message text:
//!
//! | answer | kind |
//! |---|---|
//! | `ResourceNotFoundException` | `NotFound`; success on delete |
//! | `ResourceExistsException` (create) | `AlreadyExists` |
//! | `InvalidRequestException` on read: the secret is scheduled for deletion | `NotFound` |
//! | `InvalidRequestException` on delete | success when `DescribeSecret` shows a `DeletedDate` (already scheduled for deletion); else `Unexpected` |
//! | code `AccessDeniedException` and the other refusals of the caller's identity | `PermissionDenied` |
//! | `DecryptionFailure` / `EncryptionFailure`: KMS refused the key | `PermissionDenied` |
//! | code `ThrottlingException` and the other throttling codes | `Unavailable` |
//! | `InternalServiceError`: AWS's own transient failure | `Unavailable` |
//! | `SdkError::DispatchFailure`, `SdkError::TimeoutError` | `Unavailable` |
//! | anything else | `Unexpected` |
//!
//! The error built here keeps a cause for the log, chosen so that no response body is
//! ever kept: a response of `GetSecretValue` holds the secret itself.

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::list_secrets::ListSecretsError;

use crate::{Error, ErrorKind};

/// Codes of an identity that may not make the call (the SDK has no typed variant for
/// them: they can come from any AWS service).
const PERMISSION_DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredTokenException",
];

/// Codes of a throttled call; the SDK retries these with backoff before they reach us.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
];

/// `CreateSecret`: `ResourceExistsException` means the name is taken.
pub(crate) fn classify_create(error: &SdkError<CreateSecretError, HttpResponse>) -> ErrorKind {
    match error {
        SdkError::ServiceError(context) => match context.err() {
            CreateSecretError::ResourceExistsException(_) => ErrorKind::AlreadyExists,
            CreateSecretError::EncryptionFailure(_) | CreateSecretError::DecryptionFailure(_) => {
                ErrorKind::PermissionDenied
            }
            CreateSecretError::InternalServiceError(_) => ErrorKind::Unavailable,
            other => classify_code(other.code()),
        },
        other => classify_transport(other),
    }
}

/// `GetSecretValue`: a missing secret and one scheduled for deletion both read as absent.
pub(crate) fn classify_get(error: &SdkError<GetSecretValueError, HttpResponse>) -> ErrorKind {
    match error {
        SdkError::ServiceError(context) => match context.err() {
            GetSecretValueError::ResourceNotFoundException(_) => ErrorKind::NotFound,
            // AWS (and moto) answer this for a secret in its recovery window; the names
            // credbridge makes are never managed by another service, the other cause.
            GetSecretValueError::InvalidRequestException(_) => ErrorKind::NotFound,
            GetSecretValueError::DecryptionFailure(_) => ErrorKind::PermissionDenied,
            GetSecretValueError::InternalServiceError(_) => ErrorKind::Unavailable,
            other => classify_code(other.code()),
        },
        other => classify_transport(other),
    }
}

/// `DeleteSecret`: `NotFound` when the secret is already gone. `InvalidRequestException`
/// is `Unexpected` here: AWS answers it for a secret already scheduled for deletion, which
/// is a success, but also for other states, and only [`delete_failure`]'s caller can tell
/// them apart (by the secret's `DeletedDate`, never by the message).
pub(crate) fn classify_delete(error: &SdkError<DeleteSecretError, HttpResponse>) -> ErrorKind {
    match error {
        SdkError::ServiceError(context) => match context.err() {
            DeleteSecretError::ResourceNotFoundException(_) => ErrorKind::NotFound,
            DeleteSecretError::InternalServiceError(_) => ErrorKind::Unavailable,
            other => classify_code(other.code()),
        },
        other => classify_transport(other),
    }
}

/// `DescribeSecret`, asked after a delete was refused as invalid.
pub(crate) fn classify_describe(error: &SdkError<DescribeSecretError, HttpResponse>) -> ErrorKind {
    match error {
        SdkError::ServiceError(context) => match context.err() {
            DescribeSecretError::ResourceNotFoundException(_) => ErrorKind::NotFound,
            DescribeSecretError::InternalServiceError(_) => ErrorKind::Unavailable,
            other => classify_code(other.code()),
        },
        other => classify_transport(other),
    }
}

/// `ListSecrets` (also the readiness check).
pub(crate) fn classify_list(error: &SdkError<ListSecretsError, HttpResponse>) -> ErrorKind {
    match error {
        SdkError::ServiceError(context) => match context.err() {
            ListSecretsError::InternalServiceError(_) => ErrorKind::Unavailable,
            other => classify_code(other.code()),
        },
        other => classify_transport(other),
    }
}

/// The refusals every operation shares, by the error code AWS sends.
fn classify_code(code: Option<&str>) -> ErrorKind {
    match code {
        Some(code) if PERMISSION_DENIED_CODES.contains(&code) => ErrorKind::PermissionDenied,
        Some(code) if THROTTLING_CODES.contains(&code) => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    }
}

/// Failures before or around AWS's answer.
fn classify_transport<E>(error: &SdkError<E, HttpResponse>) -> ErrorKind {
    match error {
        // Connection refused or reset, DNS, TLS, and credentials that could not be
        // fetched: the same call may work once the network or the provider is back.
        SdkError::DispatchFailure(_) => ErrorKind::Unavailable,
        // The attempt or operation timeout of the backend's config.
        SdkError::TimeoutError(_) => ErrorKind::Unavailable,
        // An answer that could not be read, or a request that could not be built.
        SdkError::ResponseError(_) | SdkError::ConstructionFailure(_) => ErrorKind::Unexpected,
        SdkError::ServiceError(_) => ErrorKind::Unexpected,
        _ => ErrorKind::Unexpected,
    }
}

pub(crate) fn create_error(error: SdkError<CreateSecretError, HttpResponse>, name: &str) -> Error {
    let kind = classify_create(&error);
    into_error(error, kind, "creating the secret").with_context("secret", name)
}

pub(crate) fn get_error(error: SdkError<GetSecretValueError, HttpResponse>, name: &str) -> Error {
    let kind = classify_get(&error);
    into_error(error, kind, "reading the secret").with_context("secret", name)
}

/// How a refused `DeleteSecret` ends.
pub(crate) enum DeleteFailure {
    /// The secret does not exist: delete is idempotent, so this is a success.
    Gone,
    /// `InvalidRequestException`: a success if the secret is already scheduled for
    /// deletion, which `DescribeSecret` tells; otherwise this error.
    Invalid(Error),
    Failed(Error),
}

pub(crate) fn delete_failure(
    error: SdkError<DeleteSecretError, HttpResponse>,
    name: &str,
) -> DeleteFailure {
    let invalid = matches!(
        &error,
        SdkError::ServiceError(context)
            if matches!(context.err(), DeleteSecretError::InvalidRequestException(_))
    );
    match classify_delete(&error) {
        ErrorKind::NotFound => DeleteFailure::Gone,
        kind => {
            let built = into_error(error, kind, "deleting the secret").with_context("secret", name);
            if invalid {
                DeleteFailure::Invalid(built)
            } else {
                DeleteFailure::Failed(built)
            }
        }
    }
}

pub(crate) fn describe_error(
    error: SdkError<DescribeSecretError, HttpResponse>,
    name: &str,
) -> Error {
    let kind = classify_describe(&error);
    into_error(error, kind, "describing the secret").with_context("secret", name)
}

/// `prefix` is the name filter of the call.
pub(crate) fn list_error(error: SdkError<ListSecretsError, HttpResponse>, prefix: &str) -> Error {
    let kind = classify_list(&error);
    into_error(error, kind, "listing secrets").with_context("name_prefix", prefix)
}

/// An [`Error`] of `kind`, with a cause that holds no response body.
fn into_error<E>(error: SdkError<E, HttpResponse>, kind: ErrorKind, action: &'static str) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    let reason = match kind {
        ErrorKind::NotFound => "the secret does not exist",
        ErrorKind::AlreadyExists => "a secret with this name already exists",
        ErrorKind::PermissionDenied => {
            "AWS refused credbridge's identity; check its IAM policy (and the KMS key policy)"
        }
        ErrorKind::Unavailable => {
            "Secrets Manager is unreachable, timed out or throttling; the call may be retried"
        }
        _ => "Secrets Manager answered unexpectedly",
    };
    let built = Error::new(kind, format!("{action} failed: {reason}"));
    match error {
        // The typed error: AWS's code and message, without the raw response.
        SdkError::ServiceError(context) => built.with_source(context.into_err()),
        // The raw response of a read holds the secret; keep none of it.
        SdkError::ResponseError(_) => built.with_context("cause", "unreadable response"),
        // Connection, timeout and construction failures carry no response.
        other => built.with_source(other),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_secretsmanager::types::error::{
        DecryptionFailure, EncryptionFailure, InternalServiceError, InvalidParameterException,
        InvalidRequestException, LimitExceededException, ResourceExistsException,
        ResourceNotFoundException,
    };
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(
            status.try_into().unwrap(),
            SdkBody::from("{\"SecretString\":\"hunter2\"}"),
        )
    }

    fn service<E>(error: E) -> SdkError<E, HttpResponse> {
        SdkError::service_error(error, response(400))
    }

    /// An error AWS sent with only a code, as the SDK builds it for codes it does not model.
    fn coded<E>(code: &str, generic: fn(ErrorMetadata) -> E) -> SdkError<E, HttpResponse> {
        service(generic(
            ErrorMetadata::builder()
                .code(code)
                .message("refused")
                .build(),
        ))
    }

    fn dispatch<E>() -> SdkError<E, HttpResponse> {
        SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ))))
    }

    fn timeout<E>() -> SdkError<E, HttpResponse> {
        SdkError::timeout_error("operation timeout (all attempts including retries) occurred")
    }

    fn unreadable<E>() -> SdkError<E, HttpResponse> {
        SdkError::response_error("failed to parse", response(200))
    }

    // Row: ResourceNotFoundException → NotFound (read), success (delete).
    #[test]
    fn resource_not_found_is_not_found_and_delete_succeeds() {
        let get = service(GetSecretValueError::ResourceNotFoundException(
            ResourceNotFoundException::builder().build(),
        ));
        assert_eq!(classify_get(&get), ErrorKind::NotFound);
        let delete = service(DeleteSecretError::ResourceNotFoundException(
            ResourceNotFoundException::builder().build(),
        ));
        assert_eq!(classify_delete(&delete), ErrorKind::NotFound);
        assert!(matches!(
            delete_failure(delete, "p/s/id"),
            DeleteFailure::Gone
        ));
        let describe = service(DescribeSecretError::ResourceNotFoundException(
            ResourceNotFoundException::builder().build(),
        ));
        assert_eq!(classify_describe(&describe), ErrorKind::NotFound);
    }

    // Row: ResourceExistsException → AlreadyExists.
    #[test]
    fn resource_exists_is_already_exists() {
        let error = service(CreateSecretError::ResourceExistsException(
            ResourceExistsException::builder().build(),
        ));
        assert_eq!(classify_create(&error), ErrorKind::AlreadyExists);
    }

    // Row: InvalidRequestException (scheduled for deletion) → NotFound on read.
    #[test]
    fn invalid_request_is_not_found_on_read() {
        let get = service(GetSecretValueError::InvalidRequestException(
            InvalidRequestException::builder().build(),
        ));
        assert_eq!(classify_get(&get), ErrorKind::NotFound);
    }

    // Row: InvalidRequestException on delete → left to DescribeSecret; an error meanwhile,
    // whatever its message says.
    #[test]
    fn invalid_request_on_delete_is_not_a_success_by_itself() {
        let delete = service(DeleteSecretError::InvalidRequestException(
            InvalidRequestException::builder()
                .message("You can't perform this operation on the secret because it was marked for deletion.")
                .build(),
        ));
        assert_eq!(classify_delete(&delete), ErrorKind::Unexpected);
        match delete_failure(delete, "p/s/id") {
            DeleteFailure::Invalid(error) => assert_eq!(error.kind(), ErrorKind::Unexpected),
            _ => panic!("an InvalidRequestException is neither gone nor another failure"),
        }
    }

    // Row: AccessDenied (and the other refusals of the identity) → PermissionDenied.
    #[test]
    fn access_denied_is_permission_denied_for_every_operation() {
        for code in PERMISSION_DENIED_CODES {
            assert_eq!(
                classify_get(&coded(code, GetSecretValueError::generic)),
                ErrorKind::PermissionDenied,
                "{code}"
            );
            assert_eq!(
                classify_create(&coded(code, CreateSecretError::generic)),
                ErrorKind::PermissionDenied,
                "{code}"
            );
            assert_eq!(
                classify_list(&coded(code, ListSecretsError::generic)),
                ErrorKind::PermissionDenied,
                "{code}"
            );
            assert_eq!(
                classify_delete(&coded(code, DeleteSecretError::generic)),
                ErrorKind::PermissionDenied,
                "{code}"
            );
            assert_eq!(
                classify_describe(&coded(code, DescribeSecretError::generic)),
                ErrorKind::PermissionDenied,
                "{code}"
            );
        }
    }

    // Row: KMS refused the key → PermissionDenied.
    #[test]
    fn kms_failures_are_permission_denied() {
        let get = service(GetSecretValueError::DecryptionFailure(
            DecryptionFailure::builder().build(),
        ));
        assert_eq!(classify_get(&get), ErrorKind::PermissionDenied);
        let create = service(CreateSecretError::EncryptionFailure(
            EncryptionFailure::builder().build(),
        ));
        assert_eq!(classify_create(&create), ErrorKind::PermissionDenied);
    }

    // Row: Throttling → Unavailable.
    #[test]
    fn throttling_is_unavailable_for_every_operation() {
        for code in THROTTLING_CODES {
            assert_eq!(
                classify_get(&coded(code, GetSecretValueError::generic)),
                ErrorKind::Unavailable,
                "{code}"
            );
            assert_eq!(
                classify_create(&coded(code, CreateSecretError::generic)),
                ErrorKind::Unavailable,
                "{code}"
            );
            assert_eq!(
                classify_list(&coded(code, ListSecretsError::generic)),
                ErrorKind::Unavailable,
                "{code}"
            );
            assert_eq!(
                classify_delete(&coded(code, DeleteSecretError::generic)),
                ErrorKind::Unavailable,
                "{code}"
            );
        }
    }

    // Row: InternalServiceError → Unavailable.
    #[test]
    fn internal_service_error_is_unavailable() {
        let build = || InternalServiceError::builder().build();
        assert_eq!(
            classify_get(&service(GetSecretValueError::InternalServiceError(build()))),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_create(&service(CreateSecretError::InternalServiceError(build()))),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_delete(&service(DeleteSecretError::InternalServiceError(build()))),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_describe(&service(DescribeSecretError::InternalServiceError(build()))),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_list(&service(ListSecretsError::InternalServiceError(build()))),
            ErrorKind::Unavailable
        );
    }

    // Row: dispatch failure → Unavailable.
    #[test]
    fn dispatch_failure_is_unavailable() {
        assert_eq!(classify_get(&dispatch()), ErrorKind::Unavailable);
        assert_eq!(classify_create(&dispatch()), ErrorKind::Unavailable);
        assert_eq!(classify_list(&dispatch()), ErrorKind::Unavailable);
        assert!(matches!(
            delete_failure(dispatch(), "p/s/id"),
            DeleteFailure::Failed(error) if error.kind() == ErrorKind::Unavailable
        ));
        assert_eq!(classify_describe(&dispatch()), ErrorKind::Unavailable);
    }

    // Row: timeout → Unavailable.
    #[test]
    fn timeout_is_unavailable() {
        assert_eq!(classify_get(&timeout()), ErrorKind::Unavailable);
        assert_eq!(classify_create(&timeout()), ErrorKind::Unavailable);
        assert_eq!(classify_delete(&timeout()), ErrorKind::Unavailable);
        assert_eq!(classify_list(&timeout()), ErrorKind::Unavailable);
    }

    // Row: anything else → Unexpected.
    #[test]
    fn anything_else_is_unexpected() {
        assert_eq!(classify_get(&unreadable()), ErrorKind::Unexpected);
        assert_eq!(
            classify_get(&SdkError::construction_failure("no region")),
            ErrorKind::Unexpected
        );
        assert_eq!(
            classify_get(&service(GetSecretValueError::InvalidParameterException(
                InvalidParameterException::builder().build()
            ))),
            ErrorKind::Unexpected
        );
        assert_eq!(
            classify_create(&service(CreateSecretError::LimitExceededException(
                LimitExceededException::builder().build()
            ))),
            ErrorKind::Unexpected
        );
        // A soft-deleted name on real AWS; ids are fresh, so this is not a collision.
        assert_eq!(
            classify_create(&service(CreateSecretError::InvalidRequestException(
                InvalidRequestException::builder().build()
            ))),
            ErrorKind::Unexpected
        );
        assert_eq!(
            classify_list(&coded("SomethingNew", ListSecretsError::generic)),
            ErrorKind::Unexpected
        );
        assert_eq!(
            classify_get(&coded("SomethingNew", GetSecretValueError::generic)),
            ErrorKind::Unexpected
        );
    }

    #[test]
    fn errors_name_the_secret_and_keep_no_response_body() {
        let error = get_error(unreadable(), "credbridge/default/cred_1");
        let printed = format!("{error} {error:?}");
        assert!(printed.contains("credbridge/default/cred_1"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(std::error::Error::source(&error).is_none());

        let error = get_error(
            service(GetSecretValueError::DecryptionFailure(
                DecryptionFailure::builder().message("KMS said no").build(),
            )),
            "credbridge/default/cred_1",
        );
        let printed = format!("{error} {error:?}");
        assert!(printed.contains("KMS said no"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
