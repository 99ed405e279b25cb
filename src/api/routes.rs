//! Every route the server answers, in one table: the router registers it; the request's
//! metrics and audit line find in it what a matched path does; the OpenAPI document
//! describes its credential operations at its paths.

use std::sync::Arc;

use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};

use super::{credentials, health, metrics, openapi, AppState};

/// What a request does: one per routed method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ConnectionTest,
    Create,
    Read,
    Delete,
    Liveness,
    Readiness,
    OpenApi,
    Metrics,
}

/// Where a route is: the base path, one credential under it, or a fixed path outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutePath {
    Base,
    Item,
    Fixed(&'static str),
}

/// The name of a credential path's parameter.
pub const ID: &str = "id";

impl RoutePath {
    /// The template the router matches. The id is a wildcard so that an id holding a `/`
    /// reaches the id check, and its 400, rather than the 404 of an unknown route.
    pub fn router_template(self, base_path: &str) -> String {
        match self {
            RoutePath::Base => base_path.to_owned(),
            RoutePath::Item => format!("{base_path}/{{*{ID}}}"),
            RoutePath::Fixed(path) => path.to_owned(),
        }
    }

    /// The template as OpenAPI writes it.
    pub fn openapi_template(self, base_path: &str) -> String {
        match self {
            RoutePath::Item => format!("{base_path}/{{{ID}}}"),
            other => other.router_template(base_path),
        }
    }
}

/// One route.
pub struct Route {
    pub operation: Operation,
    pub method: Method,
    pub path: RoutePath,
    /// The operation's name in the audit log (and a label value of the alert pack): set for
    /// the credential operations, `None` for the routes that touch no credential.
    pub audit_name: Option<&'static str>,
    /// The handler, on the methods given.
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

/// The table. `/metrics` is routed only when metrics are on.
pub static ROUTES: [Route; 8] = [
    Route {
        operation: Operation::ConnectionTest,
        method: Method::GET,
        path: RoutePath::Base,
        audit_name: Some("connection_test"),
        handler: |methods| on(methods, credentials::connection_test),
    },
    Route {
        operation: Operation::Create,
        method: Method::POST,
        path: RoutePath::Base,
        audit_name: Some("create"),
        handler: |methods| on(methods, credentials::create),
    },
    Route {
        operation: Operation::Read,
        method: Method::GET,
        path: RoutePath::Item,
        audit_name: Some("read"),
        handler: |methods| on(methods, credentials::read),
    },
    Route {
        operation: Operation::Delete,
        method: Method::DELETE,
        path: RoutePath::Item,
        audit_name: Some("delete"),
        handler: |methods| on(methods, credentials::delete),
    },
    Route {
        operation: Operation::Liveness,
        method: Method::GET,
        path: RoutePath::Fixed("/healthz"),
        audit_name: None,
        handler: |methods| on(methods, health::healthz),
    },
    Route {
        operation: Operation::Readiness,
        method: Method::GET,
        path: RoutePath::Fixed("/readyz"),
        audit_name: None,
        handler: |methods| on(methods, health::readyz),
    },
    Route {
        operation: Operation::OpenApi,
        method: Method::GET,
        path: RoutePath::Fixed("/openapi.json"),
        audit_name: None,
        handler: |methods| on(methods, openapi::serve),
    },
    Route {
        operation: Operation::Metrics,
        method: Method::GET,
        path: RoutePath::Fixed("/metrics"),
        audit_name: None,
        handler: |methods| on(methods, metrics::metrics),
    },
];

impl Route {
    /// The handler on the route's method.
    pub fn endpoint(&self) -> MethodRouter<AppState> {
        // Every method in the table is a standard one (a test builds them all).
        let methods = MethodFilter::try_from(self.method.clone())
            .expect("the route table holds standard methods only");
        (self.handler)(methods)
    }
}

/// The table under one base path, each template made once: finding what a matched path
/// does compares a few short strings and allocates nothing, and labelling a request with
/// its template clones an `Arc`.
pub struct Routes {
    base_path: String,
    paths: Vec<ServedPath>,
}

/// One template and the routes at it.
pub struct ServedPath {
    /// As the router matched it; the `route` label of the HTTP metrics.
    pub template: Arc<str>,
    routes: Vec<&'static Route>,
}

impl ServedPath {
    pub fn routes(&self) -> impl Iterator<Item = &'static Route> + '_ {
        self.routes.iter().copied()
    }

    /// The route a request with `method` at this path took; `None` when the path does not
    /// take the method (answered 405).
    pub fn route(&self, method: &Method) -> Option<&'static Route> {
        self.routes().find(|route| route.method == method)
    }
}

impl Routes {
    pub fn new(base_path: &str) -> Self {
        let mut paths: Vec<ServedPath> = Vec::new();
        for route in &ROUTES {
            let template = route.path.router_template(base_path);
            match paths.iter_mut().find(|path| *path.template == *template) {
                Some(path) => path.routes.push(route),
                None => paths.push(ServedPath {
                    template: Arc::from(template),
                    routes: vec![route],
                }),
            }
        }
        Self {
            base_path: base_path.to_owned(),
            paths,
        }
    }

    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Every template, in the table's order.
    pub fn paths(&self) -> &[ServedPath] {
        &self.paths
    }

    /// The path whose template the router matched.
    pub fn find(&self, matched: &str) -> Option<&ServedPath> {
        self.paths.iter().find(|path| *path.template == *matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_standard_method_and_its_own_method_and_path() {
        let routes = Routes::new("/api/v1/credentials");
        for path in routes.paths() {
            let served: Vec<_> = path.routes().collect();
            for (index, route) in served.iter().enumerate() {
                drop(route.endpoint());
                assert!(
                    served[..index]
                        .iter()
                        .all(|other| other.method != route.method),
                    "{} {} twice",
                    route.method,
                    path.template
                );
            }
        }
    }

    #[test]
    fn a_matched_template_finds_the_operation_of_its_method() {
        let routes = Routes::new("/custom/base");
        let operation = |template: &str, method: Method| {
            routes
                .find(template)
                .and_then(|path| path.route(&method))
                .map(|route| route.operation)
        };
        assert_eq!(
            operation("/custom/base", Method::GET),
            Some(Operation::ConnectionTest)
        );
        assert_eq!(
            operation("/custom/base", Method::POST),
            Some(Operation::Create)
        );
        assert_eq!(
            operation("/custom/base/{*id}", Method::GET),
            Some(Operation::Read)
        );
        assert_eq!(
            operation("/custom/base/{*id}", Method::DELETE),
            Some(Operation::Delete)
        );
        assert_eq!(operation("/custom/base", Method::HEAD), None);
        assert_eq!(operation("/custom/base/{*id}", Method::PUT), None);
        assert_eq!(
            operation("/readyz", Method::GET),
            Some(Operation::Readiness)
        );
        assert!(routes.find("/api/v1/credentials").is_none());
    }

    #[test]
    fn openapi_writes_the_id_as_a_parameter_where_the_router_has_a_wildcard() {
        assert_eq!(RoutePath::Item.router_template("/b"), "/b/{*id}");
        assert_eq!(RoutePath::Item.openapi_template("/b"), "/b/{id}");
        assert_eq!(RoutePath::Base.openapi_template("/b"), "/b");
        assert_eq!(
            RoutePath::Fixed("/healthz").openapi_template("/b"),
            "/healthz"
        );
    }
}
