//! The gate of the admin pages (Apps, Users): one extractor, so no admin page
//! can forget the check. Anyone but a signed-in administrator gets the sign-in
//! page (signed out) or a 403 page (signed in), never the page itself.

use super::pages::{render, signin_redirect, ErrorPage, PageError};
use crate::credential::Caller;
use crate::state::AppState;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// A signed-in administrator.
pub struct Admin(pub Caller);

/// Where to come back to after signing in: the page asked for, or for a form
/// (which cannot be re-sent by a redirect) the section it belongs to.
fn return_to(parts: &Parts) -> String {
    let path = parts.uri.path();
    if parts.method == Method::GET {
        return parts.uri.path_and_query().map_or(path, |p| p.as_str()).to_string();
    }
    let section = path.split('/').find(|s| !s.is_empty()).unwrap_or_default();
    format!("/{section}")
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let who = <Caller as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        match who {
            Some(w) if w.user.is_admin => Ok(Admin(w)),
            None => Err(signin_redirect(&return_to(parts))),
            Some(w) => Err(render(
                StatusCode::FORBIDDEN,
                &ErrorPage {
                    signed_in_as: Some(w.user.username.clone()),
                    csrf: w.csrf(),
                    is_admin: false,
                    heading: "Admins only".into(),
                    message: "Only administrators can see and change apps and accounts.".into(),
                    back: "/devices".into(),
                },
            )),
        }
    }
}
