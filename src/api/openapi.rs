//! The contract as an OpenAPI 3.1 document, built from the code that enforces it: the paths
//! and methods from the route table, the credential schemas from the field tables in
//! `credential.rs`, each error response's status and description from the error codes'
//! table, so the document cannot drift from what the server does.
//!
//! Served at `/openapi.json`; checked in at `src/api/openapi.json` (a test compares them;
//! `credbridge openapi > src/api/openapi.json` refreshes it).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required,
};

use std::collections::BTreeMap;

use axum::http::Method;

use super::routes::{Operation, ID, ROUTES};
use super::{AppState, ErrorCode};
use crate::credential::{CredentialType, FieldKind, ADDRESS_MEMBERS};

const JSON: &str = "application/json";

/// The document for routes under `base_path`.
pub fn document(base_path: &str) -> OpenApi {
    let mut paths = Paths::new();
    for route in &ROUTES {
        if let (Some(operation), Some(method)) =
            (describe(route.operation), http_method(&route.method))
        {
            paths.add_path_operation(
                route.path.openapi_template(base_path),
                vec![method],
                operation,
            );
        }
    }

    let mut components = ComponentsBuilder::new()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        )
        .schema("Error", error_schema())
        .schema("Created", object([("id", id_schema())], &["id"]))
        .schema(
            "Status",
            object(
                [
                    ("status", string()),
                    ("scope", string()),
                    ("backend", string()),
                ],
                &["status", "scope", "backend"],
            ),
        )
        .schema(
            "Deleted",
            object(
                [
                    ("id", id_schema()),
                    (
                        "deleted",
                        ObjectBuilder::new().schema_type(SchemaType::Type(Type::Boolean)),
                    ),
                ],
                &["id", "deleted"],
            ),
        )
        .schema("BillingAddress", address_schema());
    for kind in CredentialType::ALL {
        components = components.schema(schema_name(kind), credential_schema(kind));
    }
    components = components.schema(
        "Credential",
        CredentialType::ALL
            .into_iter()
            .fold(OneOfBuilder::new(), |one_of, kind| {
                one_of.item(Ref::from_schema_name(schema_name(kind)))
            })
            .description(Some(
                "A credential as sent on create; `type` selects the shape. Any string value \
                 but `name` and `type`, at any depth, may instead be a reference to an \
                 existing entry of the vault credbridge stores in: \
                 `ref+vault://<mount>/<path>#<key>` or `ref+awssecrets://<name-or-arn>[#<key>]`. \
                 The reference is stored; every read returns the value it names then. Every \
                 string starting with `ref+` is a reference and must be a valid one, allowed \
                 for the token's scope.",
            )),
    );

    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("credbridge")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Skyvern's custom credential service. Every success is 200; every error \
                     is JSON {error, message}.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .security(Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]))
        .build()
}

/// `GET /openapi.json`.
pub async fn serve(State(state): State<AppState>) -> impl IntoResponse {
    let text = document(state.routes.base_path())
        .to_pretty_json()
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, JSON)], text)
}

fn schema_name(kind: CredentialType) -> &'static str {
    match kind {
        CredentialType::Password => "PasswordCredential",
        CredentialType::CreditCard => "CreditCardCredential",
        CredentialType::Secret => "SecretCredential",
    }
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
}

fn nullable(types: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Array(vec![types, Type::Null]))
}

fn object<const N: usize>(properties: [(&str, ObjectBuilder); N], required: &[&str]) -> Schema {
    let mut builder = ObjectBuilder::new().schema_type(SchemaType::Type(Type::Object));
    for (name, schema) in properties {
        builder = builder.property(name, schema);
    }
    for name in required {
        builder = builder.required(*name);
    }
    builder.build().into()
}

fn id_schema() -> ObjectBuilder {
    string()
        .pattern(Some("^[A-Za-z0-9_-]{1,128}$"))
        .description(Some(
            "`cred_` and 32 lowercase hex digits when minted by credbridge",
        ))
}

fn error_schema() -> Schema {
    object(
        [
            (
                "error",
                string().description(Some("a stable code, such as not_found")),
            ),
            (
                "message",
                string().description(Some("one sentence for a person")),
            ),
        ],
        &["error", "message"],
    )
}

fn address_schema() -> Schema {
    let mut builder = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for member in ADDRESS_MEMBERS {
        builder = builder.property(member, nullable(Type::String));
    }
    builder.build().into()
}

/// One credential type's shape, from the same table that validates it.
fn credential_schema(kind: CredentialType) -> Schema {
    let mut builder = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .property("name", string())
        .required("name")
        .property("type", string().enum_values(Some([kind.as_str()])))
        .required("type")
        // Fields this version does not know are stored and returned unchanged.
        .additional_properties(Some(AdditionalProperties::FreeForm(true)));
    for field in kind.fields() {
        let schema: RefOr<Schema> = match field.kind {
            FieldKind::String => string().build().into(),
            FieldKind::NullableString => nullable(Type::String).build().into(),
            FieldKind::StringMap => nullable(Type::Object)
                .additional_properties(Some(string()))
                .build()
                .into(),
            FieldKind::Address => Schema::OneOf(
                OneOfBuilder::new()
                    .item(Ref::from_schema_name("BillingAddress"))
                    .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Null)))
                    .build(),
            )
            .into(),
        };
        builder = builder.property(field.name, schema);
        if field.required {
            builder = builder.required(field.name);
        }
    }
    builder.build().into()
}

fn json_response(description: &str, schema: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

/// What every credential route can answer besides its own errors: the token check, the
/// rate limits, the backend's failures and the request's time limit.
const CREDENTIAL_ERRORS: [ErrorCode; 6] = [
    ErrorCode::Unauthorized,
    ErrorCode::RateLimited,
    ErrorCode::BackendPermissionDenied,
    ErrorCode::BackendError,
    ErrorCode::BackendUnavailable,
    ErrorCode::Timeout,
];

/// The route's success, and one response per status its errors (and the common ones) are
/// answered with, describing each code.
fn responses(success: utoipa::openapi::Response, errors: &[ErrorCode]) -> ResponsesBuilder {
    let mut builder = ResponsesBuilder::new().response("200", success);
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in CREDENTIAL_ERRORS.iter().chain(errors) {
        by_status
            .entry(code.status().as_u16())
            .or_default()
            .push(*code);
    }
    for (status, codes) in by_status {
        let described = |code: &ErrorCode| format!("`{}`: {}", code.as_str(), code.meaning());
        let description = match codes.as_slice() {
            [code] => described(code),
            codes => codes
                .iter()
                .map(|code| format!("- {}", described(code)))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        builder = builder.response(status.to_string(), json_response(&description, "Error"));
    }
    builder
}

fn id_parameter() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(ID)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(id_schema()))
        .build()
}

/// The document's description of an operation: the credential operations, not the probes.
fn describe(operation: Operation) -> Option<utoipa::openapi::path::Operation> {
    match operation {
        Operation::ConnectionTest => Some(connection_test()),
        Operation::Create => Some(create()),
        Operation::Read => Some(read()),
        Operation::Delete => Some(delete()),
        Operation::Liveness | Operation::Readiness | Operation::OpenApi | Operation::Metrics => {
            None
        }
    }
}

fn http_method(method: &Method) -> Option<HttpMethod> {
    Some(match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        Method::HEAD => HttpMethod::Head,
        Method::OPTIONS => HttpMethod::Options,
        Method::TRACE => HttpMethod::Trace,
        _ => return None,
    })
}

fn connection_test() -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .operation_id(Some("connection_test"))
        .summary(Some(
            "Skyvern's Test Connection: 200 when the token is valid and the backend answers",
        ))
        .responses(responses(
            json_response("the token is valid and the backend answers", "Status"),
            &[],
        ))
        .build()
}

fn create() -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .operation_id(Some("create_credential"))
        .summary(Some("Store a credential under a fresh id"))
        .request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(
                    JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Credential")))
                        .build(),
                )
                .build(),
        ))
        .responses(responses(
            json_response("stored; the body holds the new id", "Created"),
            &[
                ErrorCode::InvalidJson,
                ErrorCode::PayloadTooLarge,
                ErrorCode::UnsupportedMediaType,
                ErrorCode::InvalidCredential,
                ErrorCode::BackendFull,
            ],
        ))
        .build()
}

fn read() -> utoipa::openapi::path::Operation {
    let credential = json_response(
        "the credential as created, plus its id, with every reference replaced by the \
         value it names now; a password's totp_type is never null",
        "Credential",
    );
    OperationBuilder::new()
        .operation_id(Some("read_credential"))
        .summary(Some("Read a credential"))
        .parameter(id_parameter())
        .responses(responses(
            credential,
            &[
                ErrorCode::InvalidId,
                ErrorCode::NotFound,
                ErrorCode::ReferenceUnresolved,
                ErrorCode::BackendMalformed,
            ],
        ))
        .build()
}

fn delete() -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .operation_id(Some("delete_credential"))
        .summary(Some(
            "Delete a credential; idempotent, so an unknown id is also 200",
        ))
        .parameter(id_parameter())
        .responses(responses(
            json_response("deleted, or there was nothing to delete", "Deleted"),
            &[ErrorCode::InvalidId],
        ))
        .build()
}
