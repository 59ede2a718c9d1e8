//! `GET /api/v1/me`: who is asking, and from which device.

use super::devices::info;
use crate::credential::Caller;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use latchkey_store::DeviceId;

/// `GET /api/v1/me`: who is asking, and from which device.
pub async fn me(State(state): State<AppState>, who: Caller) -> ApiResult<axum::Json<latchkey_proto::api::Me>> {
    let device = match who.device_id() {
        Some(id) => state.store.device(DeviceId(id)).await?.map(|d| info(d, Some(id))),
        None => None,
    };
    Ok(axum::Json(latchkey_proto::api::Me {
        id: who.user.id.clone(),
        username: who.user.username.clone(),
        is_admin: who.user.is_admin,
        device,
    }))
}
