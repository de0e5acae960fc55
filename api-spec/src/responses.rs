//! Success responses: one status and one JSON schema per operation, as progenitor requires.

use poem::{http::StatusCode, IntoResponse, Response};
use poem_openapi::{
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
    ApiResponse,
};

fn json_response<T: ToJSON>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(&value.to_json()).unwrap_or_default();
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body)
}

fn json_meta<T: Type>(status: u16, description: &'static str) -> MetaResponses {
    MetaResponses {
        responses: vec![MetaResponse {
            description,
            status: Some(status),
            status_range: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            headers: vec![],
        }],
    }
}

macro_rules! json_success {
    ($(#[$doc:meta])* $name:ident, $status:ident, $code:literal, $desc:literal) => {
        $(#[$doc])*
        pub struct $name<T>(pub T);

        impl<T: ToJSON> IntoResponse for $name<T> {
            fn into_response(self) -> Response {
                json_response(StatusCode::$status, &self.0)
            }
        }

        impl<T: ToJSON> ApiResponse for $name<T> {
            fn meta() -> MetaResponses {
                json_meta::<T>($code, $desc)
            }

            fn register(registry: &mut Registry) {
                T::register(registry);
            }
        }
    };
}

json_success!(
    /// `200 OK` with a JSON body.
    Ok200, OK, 200, "OK"
);
json_success!(
    /// `201 Created` with the created resource.
    Created, CREATED, 201, "Created"
);
json_success!(
    /// `202 Accepted` with the queued work.
    Accepted, ACCEPTED, 202, "Accepted"
);

/// `204 No Content`.
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

impl ApiResponse for NoContent {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "No Content",
                status: Some(204),
                status_range: None,
                content: vec![],
                headers: vec![],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}
