//! The OpenAPI 3.1 document of both APIs, served at `GET /openapi.json`.
//!
//! Schemas are derived from the types the handlers read and write (`utoipa::ToSchema` on
//! the model's entities, behind its `openapi` feature, and on this crate's bodies);
//! operations are built here, the management collections from the same
//! [`COLLECTIONS`](crate::management::COLLECTIONS) list the router registers. The tests
//! (`openapi_tests.rs`) walk every route the router serves and fail when it and this
//! document differ in a path or a method.
//!
//! The management API shows an entity without its write-only fields, and takes its id
//! from the URL, so two adjustments are made to the model's schemas: write-only fields
//! are never required (the entity schema, e.g. `Subscription`), and each entity has an
//! `…Input` schema for PUT bodies in which the id may be omitted.

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response as HttpResponse};
use gatehouse_model::{
    Api, Backend, Certificate, Gateway, Hostname, NamedValue, PolicyFragment, Product, Snapshot,
    Subscription,
};
use gatehouse_store::Kind;
use http::header;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    Components, Content, HeaderBuilder, OpenApi, Paths, Ref, RefOr, Required, Response,
    ResponseBuilder,
};
use utoipa::{IntoParams, OpenApi as _, ToSchema};

use gatehouse_model::wire::{Change, Changes, Heartbeat, Op};

use crate::config_api::ChangesQuery;
use crate::entities;
use crate::error::ErrorBody;
use crate::management::{
    COLLECTIONS, GatewayTokenValue, GenerateToken, KeyType, ListParams, RegenerateKey,
    SubscriptionSecrets,
};
use crate::status::GatewayStatus;

/// Handler of `GET /openapi.json`.
pub async fn serve() -> HttpResponse {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        // Serialising plain data cannot fail; an empty body would fail every client loudly.
        serde_json::to_string_pretty(&document()).unwrap_or_default()
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// The schemas, collected from the types (nested types come with them).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Gatehouse control plane",
        description = "The management API (`Authorization: Bearer <admin token>`, the token is in `<data-dir>/admin-token`) and the Configuration API v2 gateways pull from (`Authorization: GatewayKey <id>&<expiry>&<signature>`). Errors are `{\"error\": {\"code\", \"message\"}}`. Contract: docs/control-plane.md."
    ),
    components(schemas(
        Api,
        Product,
        Subscription,
        NamedValue,
        Backend,
        Certificate,
        Hostname,
        Gateway,
        PolicyFragment,
        PolicyBody,
        Snapshot,
        ErrorBody,
        GatewayStatus,
        Changes,
        Change,
        Kind,
        Op,
        Heartbeat,
        KeyType,
        RegenerateKey,
        GenerateToken,
        GatewayTokenValue,
        SubscriptionSecrets,
        Deployment,
    ))
)]
struct Schemas;

/// Body of `/policy`, as [`entities::PolicyBody`] reads it (that type carries no schema).
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "describes entities::PolicyBody in the document only"
)]
struct PolicyBody {
    /// The global `<policies>` document, applied to every API.
    #[schema(example = "<policies><inbound><base /></inbound></policies>")]
    value: String,
}

/// Answer of `GET /gateways/{id}/deployment`, as `crate::deployment` writes it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes crate::deployment's answer in the document only"
)]
struct Deployment {
    /// Kubernetes manifest (ConfigMap, Deployment, Service) for the gateway, YAML.
    manifest: String,
    /// The `kubectl` command creating the Secret that holds a new gateway token (the
    /// token never goes into the manifest).
    secret_command: String,
    /// When that token expires: UTC `yyyyMMddHHmm`.
    #[schema(example = "202612240000")]
    token_expiry: String,
}

/// Query of `GET /gateways/{id}/deployment`, as `crate::deployment` reads it.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[expect(
    dead_code,
    reason = "describes crate::deployment's query in the document only"
)]
struct DeploymentQuery {
    /// The manifest format; `kubernetes` is the only one.
    #[param(pattern = "^kubernetes$", example = "kubernetes")]
    format: String,
    /// Which gateway key signs the token (default `primary`).
    key_type: Option<KeyType>,
    /// Token lifetime in days (default 30).
    #[param(minimum = 1, maximum = 30)]
    expiry_days: Option<u32>,
}

/// What the document says about each management collection.
struct Collection {
    kind: Kind,
    /// Schema of the entity (`Api`); `…Input` and `…Page` derive from it.
    schema: &'static str,
    /// `Apis`, for operation ids.
    plural: &'static str,
    /// The field holding the id, optional in PUT bodies.
    id_field: &'static str,
    /// Write-only fields: accepted on PUT, never shown, so never required.
    write_only: &'static [&'static str],
}

const fn collection(kind: Kind) -> Collection {
    let (schema, plural, id_field, write_only): (_, _, _, &[&str]) = match kind {
        Kind::Api => ("Api", "Apis", "id", &[]),
        Kind::Product => ("Product", "Products", "id", &[]),
        Kind::Subscription => (
            "Subscription",
            "Subscriptions",
            "id",
            &["primaryKey", "secondaryKey"],
        ),
        // Only a secret value is write-only; the schema cannot say "when secret".
        Kind::NamedValue => ("NamedValue", "NamedValues", "name", &["value"]),
        Kind::Backend => ("Backend", "Backends", "id", &[]),
        Kind::Certificate => ("Certificate", "Certificates", "id", &["privateKeyPem"]),
        Kind::Hostname => ("Hostname", "Hostnames", "hostname", &[]),
        Kind::Gateway => ("Gateway", "Gateways", "id", &[]),
        Kind::PolicyFragment => ("PolicyFragment", "PolicyFragments", "id", &[]),
        Kind::Policy => ("PolicyBody", "Policy", "", &[]),
    };
    Collection {
        kind,
        schema,
        plural,
        id_field,
        write_only,
    }
}

/// The whole document.
#[must_use]
pub fn document() -> OpenApi {
    let mut doc = Schemas::openapi();
    let mut paths = Paths::new();
    let components = doc.components.get_or_insert_with(Default::default);
    for kind in COLLECTIONS {
        let c = collection(kind);
        if let Some(RefOr::T(Schema::Object(entity))) = components.schemas.get_mut(c.schema) {
            entity
                .required
                .retain(|field| !c.write_only.contains(&field.as_str()));
            for field in c.write_only {
                if let Some(RefOr::T(Schema::Object(property))) = entity.properties.get_mut(*field)
                {
                    property.description = Some(format!(
                        "{} Write-only: accepted on PUT (kept when a PUT leaves it out), never shown by the management API.",
                        property.description.as_deref().unwrap_or_default()
                    ));
                }
            }
            let mut input = entity.clone();
            input.required.retain(|field| field != c.id_field);
            input.description = Some(format!(
                "{} The `{}` may be omitted: it is taken from the URL.",
                input.description.as_deref().unwrap_or_default(),
                c.id_field
            ));
            components.schemas.insert(
                format!("{}Input", c.schema),
                RefOr::T(Schema::Object(input)),
            );
        }
        components
            .schemas
            .insert(format!("{}Page", c.schema), page_schema(&c));
    }
    components.security_schemes.insert(
        "admin".to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The admin token, from `<data-dir>/admin-token`. Management API only.",
                ))
                .build(),
        )),
    );
    components.security_schemes.insert(
        "gatewayKey".to_owned(),
        RefOr::T(SecurityScheme::ApiKey(ApiKey::Header(
            ApiKeyValue::with_description(
                "Authorization",
                "`GatewayKey <gatewayId>&<yyyyMMddHHmm>&<signature>`, from `POST /gateways/{id}/generate-token`. Configuration API v2 only.",
            ),
        ))),
    );
    let components = &*components;
    add_health(&mut paths);
    for kind in COLLECTIONS {
        let c = collection(kind);
        add_collection(&mut paths, &c, &id_schema(components, &c));
    }
    add_policy(&mut paths);
    add_subscription_actions(
        &mut paths,
        &id_schema(components, &collection(Kind::Subscription)),
    );
    add_gateway_actions(
        &mut paths,
        &id_schema(components, &collection(Kind::Gateway)),
    );
    add_configuration_api(
        &mut paths,
        id_schema(components, &collection(Kind::Gateway)),
    );
    doc.paths = paths;
    doc
}

// === building blocks ===

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn string_schema() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn json(description: &str, schema: RefOr<Schema>) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(schema)))
        .build()
}

fn with_etag(mut response: Response) -> Response {
    response.headers.insert(
        "ETag".to_owned(),
        RefOr::T(HeaderBuilder::new()
            .schema(Some(string_schema()))
            .description(Some(
                "The revision of the entity's last write, quoted (`\"42\"`); send it back in `If-Match`.",
            ))
            .build()),
    );
    response
}

fn no_content(description: &str) -> Response {
    ResponseBuilder::new().description(description).build()
}

fn error(description: &str) -> Response {
    json(description, schema_ref("ApiError"))
}

/// The schema of an entity's id field (its pattern, when it has one), for the path
/// parameter naming the entity.
fn id_schema(components: &Components, c: &Collection) -> Schema {
    let pattern = match components.schemas.get(c.schema) {
        Some(RefOr::T(Schema::Object(entity))) => match entity.properties.get(c.id_field) {
            Some(RefOr::T(Schema::Object(id))) => id.pattern.clone(),
            _ => None,
        },
        _ => None,
    };
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(pattern)
        .into()
}

fn path_param(name: &str, description: &str, schema: Schema) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn if_match() -> Parameter {
    ParameterBuilder::new()
        .name("If-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Only if the entity is at this ETag (as returned, `\"42\"`); `*`: any. Stale: 412.",
        ))
        .schema(Some(string_schema()))
        .example(Some(serde_json::Value::String("\"1\"".to_owned())))
        .build()
}

fn if_none_match() -> Parameter {
    ParameterBuilder::new()
        .name("If-None-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "`*`: create only; 412 when the entity exists. Not together with `If-Match`.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["*"])),
        ))
        .build()
}

fn json_body(schema: RefOr<Schema>) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content("application/json", Content::new(Some(schema)))
        .build()
}

/// An operation of the management API: admin token, 401 and 403.
fn management(operation_id: &str, tag: &str, summary: &str) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(operation_id))
        .tag(tag)
        .summary(Some(summary))
        .security(SecurityRequirement::new("admin", Vec::<String>::new()))
        .response("401", error("No admin token, or not the admin token."))
        .response(
            "403",
            error("A gateway token: it only opens the Configuration API (/v2)."),
        )
}

/// An operation of the Configuration API: gateway token, 401 and 403.
fn configuration(operation_id: &str, summary: &str, gateway_id: Schema) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(operation_id))
        .tag("configuration")
        .summary(Some(summary))
        .security(SecurityRequirement::new("gatewayKey", Vec::<String>::new()))
        .parameter(path_param("id", "Gateway id.", gateway_id))
        .response(
            "401",
            error("No gateway token, or one malformed, expired or signed by a key since regenerated (the reason in the message)."),
        )
        .response(
            "403",
            error("The admin token, or a token of another gateway."),
        )
}

fn add(paths: &mut Paths, path: &str, method: HttpMethod, operation: impl Into<Operation>) {
    paths.add_path_operation(path, vec![method], operation);
}

// === the paths ===

fn add_health(paths: &mut Paths) {
    let text = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content("text/plain", Content::new(Some(string_schema())))
            .build()
    };
    for (path, id, summary) in [
        ("/healthz", "healthz", "Liveness: the process answers."),
        ("/readyz", "readyz", "Readiness."),
    ] {
        add(
            paths,
            path,
            HttpMethod::Get,
            OperationBuilder::new()
                .operation_id(Some(id))
                .tag("health")
                .summary(Some(summary))
                .response("200", text("OK.")),
        );
    }
    add(
        paths,
        "/openapi.json",
        HttpMethod::Get,
        OperationBuilder::new()
            .operation_id(Some("openapi"))
            .tag("health")
            .summary(Some("This document."))
            .response(
                "200",
                json(
                    "The OpenAPI document.",
                    RefOr::T(ObjectBuilder::new().schema_type(Type::Object).into()),
                ),
            ),
    );
}

fn page_schema(c: &Collection) -> RefOr<Schema> {
    RefOr::T(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(format!("One page of {}.", c.plural)))
            .property(
                "value",
                ArrayBuilder::new().items(schema_ref(c.schema)).build(),
            )
            .required("value")
            .property(
                "count",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .description(Some("Entities matching `search`, on every page.")),
            )
            .required("count")
            .property(
                "nextLink",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("The next page (path and query); absent on the last.")),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into(),
    )
}

/// Responses of a PUT that stores an entity.
fn put_responses(builder: OperationBuilder, schema: &str) -> OperationBuilder {
    builder
        .response("200", with_etag(json("Replaced.", schema_ref(schema))))
        .response("201", with_etag(json("Created.", schema_ref(schema))))
        .response(
            "400",
            error("Not JSON, unknown field, wrong type, id not the URL's, a bad `If-Match` or `If-None-Match`, or the configuration would be invalid (policy errors with line and column)."),
        )
        .response(
            "412",
            error("`If-Match` is not the current ETag, or `If-None-Match: *` and it exists (code `AlreadyExists`)."),
        )
        .response("413", error("The body is over 1 MiB."))
}

fn delete_responses(builder: OperationBuilder) -> OperationBuilder {
    builder
        .parameter(if_match())
        .response("204", no_content("Deleted."))
        .response("400", error("A bad `If-Match` or `If-None-Match`."))
        .response("404", error("No such entity."))
        .response("409", error("Still referenced by another entity."))
        .response("412", error("`If-Match` is not the current ETag."))
}

fn add_collection(paths: &mut Paths, c: &Collection, id_schema: &Schema) {
    let collection = format!("/{}", entities::collection(c.kind));
    let item = format!("{collection}/{{id}}");
    let tag = entities::collection(c.kind);
    let noun = entities::noun(c.kind);
    let id = || {
        path_param(
            "id",
            &format!("The {noun}'s `{}`.", c.id_field),
            id_schema.clone(),
        )
    };
    let mut list = management(
        &format!("list{}", c.plural),
        tag,
        &format!("List {}, by id.", c.plural),
    );
    for parameter in ListParams::into_params(|| Some(ParameterIn::Query)) {
        list = list.parameter(parameter);
    }
    add(
        paths,
        &collection,
        HttpMethod::Get,
        list.response(
            "200",
            json("A page.", schema_ref(&format!("{}Page", c.schema))),
        )
        .response("400", error("An unknown or malformed query parameter.")),
    );
    add(
        paths,
        &item,
        HttpMethod::Get,
        management(
            &format!("get{}", c.schema),
            tag,
            &format!("Get one {noun} (write-only fields left out)."),
        )
        .parameter(id())
        .response("200", with_etag(json("The entity.", schema_ref(c.schema))))
        .response("404", error("No such entity.")),
    );
    add(
        paths,
        &item,
        HttpMethod::Put,
        put_responses(
            management(
                &format!("put{}", c.schema),
                tag,
                &format!("Create or replace a {noun}, validated first."),
            )
            .parameter(id())
            .parameter(if_match())
            .parameter(if_none_match())
            .request_body(Some(json_body(schema_ref(&format!("{}Input", c.schema))))),
            c.schema,
        ),
    );
    add(
        paths,
        &item,
        HttpMethod::Delete,
        delete_responses(
            management(
                &format!("delete{}", c.schema),
                tag,
                &format!("Delete a {noun} that nothing refers to."),
            )
            .parameter(id()),
        ),
    );
}

fn add_policy(paths: &mut Paths) {
    let schema = collection(Kind::Policy).schema;
    let path = format!("/{}", entities::collection(Kind::Policy));
    add(
        paths,
        &path,
        HttpMethod::Get,
        management("getPolicy", "policy", "Get the global policy.")
            .response("200", with_etag(json("The policy.", schema_ref(schema))))
            .response("404", error("No global policy is set.")),
    );
    add(
        paths,
        &path,
        HttpMethod::Put,
        put_responses(
            management(
                "putPolicy",
                "policy",
                "Set the global policy, compiled first.",
            )
            .parameter(if_match())
            .parameter(if_none_match())
            .request_body(Some(json_body(schema_ref(schema)))),
            schema,
        ),
    );
    add(
        paths,
        &path,
        HttpMethod::Delete,
        delete_responses(management(
            "deletePolicy",
            "policy",
            "Remove the global policy.",
        )),
    );
}

fn add_subscription_actions(paths: &mut Paths, id_schema: &Schema) {
    let id = || path_param("id", "Subscription id.", id_schema.clone());
    for (action, operation_id, summary) in [
        (
            "regenerate-primary-key",
            "regenerateSubscriptionPrimaryKey",
            "Replace the primary key.",
        ),
        (
            "regenerate-secondary-key",
            "regenerateSubscriptionSecondaryKey",
            "Replace the secondary key.",
        ),
        (
            "suspend",
            "suspendSubscription",
            "Suspend: its keys get 403.",
        ),
        (
            "activate",
            "activateSubscription",
            "Activate a suspended subscription.",
        ),
    ] {
        add(
            paths,
            &format!("/subscriptions/{{id}}/{action}"),
            HttpMethod::Post,
            management(operation_id, "subscriptions", summary)
                .parameter(id())
                .response(
                    "200",
                    with_etag(json(
                        "The subscription as it is now (keys left out).",
                        schema_ref("Subscription"),
                    )),
                )
                .response("400", error("The configuration would be invalid."))
                .response("404", error("No such subscription."))
                .response("412", error("It changed concurrently; retry.")),
        );
    }
    add(
        paths,
        "/subscriptions/{id}/list-secrets",
        HttpMethod::Post,
        management(
            "listSubscriptionSecrets",
            "subscriptions",
            "The subscription's keys: the only way to read them.",
        )
        .parameter(id())
        .response("200", json("The keys.", schema_ref("SubscriptionSecrets")))
        .response("404", error("No such subscription.")),
    );
}

fn add_gateway_actions(paths: &mut Paths, id_schema: &Schema) {
    let id = || path_param("id", "Gateway id.", id_schema.clone());
    add(
        paths,
        "/gateways/{id}/regenerate-key",
        HttpMethod::Post,
        management(
            "regenerateGatewayKey",
            "gateways",
            "Replace one of the gateway's keys; tokens it signed stop working.",
        )
        .parameter(id())
        .request_body(Some(json_body(schema_ref("RegenerateKey"))))
        .response("204", no_content("Replaced."))
        .response("400", error("The body is not a `RegenerateKey`."))
        .response("404", error("No such gateway."))
        .response("413", error("The body is over 1 MiB.")),
    );
    add(
        paths,
        "/gateways/{id}/generate-token",
        HttpMethod::Post,
        management(
            "generateGatewayToken",
            "gateways",
            "A token for the Configuration API, signed with one of the gateway's keys.",
        )
        .parameter(id())
        .request_body(Some(json_body(schema_ref("GenerateToken"))))
        .response(
            "200",
            json("The token.", schema_ref("GatewayTokenValue")),
        )
        .response(
            "400",
            error("The body is not a `GenerateToken`, or the expiry is past or more than 30 days ahead."),
        )
        .response("404", error("No such gateway."))
        .response("413", error("The body is over 1 MiB.")),
    );
    add(
        paths,
        "/gateways/{id}/status",
        HttpMethod::Get,
        management(
            "getGatewayStatus",
            "gateways",
            "The instances of the gateway seen in the last 3 minutes.",
        )
        .parameter(id())
        .response("200", json("The status.", schema_ref("GatewayStatus")))
        .response("404", error("No such gateway.")),
    );
    let mut deployment = management(
        "getGatewayDeployment",
        "gateways",
        "A Kubernetes manifest for the gateway and the command creating its token Secret.",
    )
    .parameter(id());
    for parameter in DeploymentQuery::into_params(|| Some(ParameterIn::Query)) {
        deployment = deployment.parameter(parameter);
    }
    add(
        paths,
        "/gateways/{id}/deployment",
        HttpMethod::Get,
        deployment
            .response(
                "200",
                json("The manifest and the command.", schema_ref("Deployment")),
            )
            .response(
                "400",
                error("An unknown format, `expiryDays` out of 1 to 30, or an unknown parameter."),
            )
            .response("404", error("No such gateway."))
            .response(
                "409",
                error("The control plane was started without `--public-url`, so the manifest cannot say where gateways reach it."),
            ),
    );
}

fn add_configuration_api(paths: &mut Paths, gateway_id: Schema) {
    let not_found = || error("No such gateway.");
    add(
        paths,
        "/v2/gateways/{id}/snapshot",
        HttpMethod::Get,
        configuration(
            "getSnapshot",
            "Everything the gateway serves, at one revision.",
            gateway_id.clone(),
        )
        .response(
            "200",
            with_etag(json("The snapshot.", schema_ref("Snapshot"))),
        )
        .response("404", not_found()),
    );
    let mut changes = configuration(
        "getChanges",
        "The changes after `since` relevant to the gateway; held open up to `wait` seconds until there is one.",
        gateway_id.clone(),
    );
    for parameter in ChangesQuery::into_params(|| Some(ParameterIn::Query)) {
        changes = changes.parameter(parameter);
    }
    add(
        paths,
        "/v2/gateways/{id}/changes",
        HttpMethod::Get,
        changes
            .response("200", json("The changes.", schema_ref("Changes")))
            .response(
                "400",
                error("`since` missing, or an unknown or malformed query parameter."),
            )
            .response("404", not_found())
            .response(
                "410",
                error("`since` is older than the oldest change kept: take a new snapshot."),
            ),
    );
    add(
        paths,
        "/v2/gateways/{id}/heartbeat",
        HttpMethod::Post,
        configuration(
            "postHeartbeat",
            "An instance of the gateway reports in.",
            gateway_id.clone(),
        )
        .request_body(Some(json_body(schema_ref("Heartbeat"))))
        .response("204", no_content("Recorded."))
        .response("400", error("The body is not a `Heartbeat`."))
        .response("413", error("The body is over 1 MiB.")),
    );
    add(
        paths,
        "/v2/gateways/{id}/instances/{instance}",
        HttpMethod::Delete,
        configuration(
            "deleteInstance",
            "An instance of the gateway says goodbye (it is stopping): it stops counting in the gateway's status at once.",
            gateway_id,
        )
        .parameter(path_param(
            "instance",
            "The instance id its heartbeats carry.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(256))
                .into(),
        ))
        .response("204", no_content("Forgotten (or never seen)."))
        .response("400", error("An instance id of more than 256 characters.")),
    );
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
