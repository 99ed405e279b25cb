//! The contract as an OpenAPI 3.1 document, built from the code that enforces it: the
//! credential schemas come from the field tables in `credential.rs`, the statuses from
//! `ApiError`'s table, so the document cannot drift from what the server does.
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

use super::AppState;
use crate::credential::{CredentialType, FieldKind, ADDRESS_MEMBERS};

const JSON: &str = "application/json";

/// The document for routes under `base_path`.
pub fn document(base_path: &str) -> OpenApi {
    let mut paths = Paths::new();
    let item = format!("{base_path}/{{id}}");
    paths.add_path_operation(base_path, vec![HttpMethod::Get], connection_test());
    paths.add_path_operation(base_path, vec![HttpMethod::Post], create());
    paths.add_path_operation(&item, vec![HttpMethod::Get], read());
    paths.add_path_operation(&item, vec![HttpMethod::Delete], delete());

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
    let text = document(&state.base_path)
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

/// The error statuses every credential route can answer, plus the route's own.
fn responses(success: utoipa::openapi::Response, errors: &[(&str, &str)]) -> ResponsesBuilder {
    let mut builder = ResponsesBuilder::new().response("200", success);
    let common = [
        (
            "401",
            "no token, a malformed Authorization header, or an unknown or expired token",
        ),
        ("429", "a rate limit was exceeded; see Retry-After"),
        ("502", "the backend refused or failed"),
        (
            "503",
            "the backend is unavailable or too slow; the request may be retried",
        ),
    ];
    // A route's own description of a status replaces the common one.
    for (status, description) in common.iter().chain(errors.iter()) {
        builder = builder.response(*status, json_response(description, "Error"));
    }
    builder
}

fn id_parameter() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(id_schema()))
        .build()
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
                ("400", "the body is not JSON"),
                ("413", "the body is over the size limit"),
                ("415", "the Content-Type is not JSON"),
                (
                    "422",
                    "the JSON does not match the contract, or a field's reference is \
                     malformed, not allowed for the token's scope, or does not resolve; the \
                     message names the field",
                ),
                (
                    "507",
                    "the backend holds as many credentials as it may; delete some or raise \
                     its limit",
                ),
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
                ("400", "the id is malformed"),
                ("404", "no credential with this id in the token's scope"),
                (
                    "502",
                    "the backend refused or failed, or a field's reference did not resolve \
                     (`reference_unresolved`, naming the field and the reference); nothing \
                     of the credential is returned",
                ),
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
            &[("400", "the id is malformed")],
        ))
        .build()
}
