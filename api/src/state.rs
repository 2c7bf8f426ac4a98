//! What every handler can reach: the application's services, the admin
//! token, and whether the server is draining.

use std::sync::Arc;

use tokio::sync::watch;

use crate::admin_token::AdminToken;
use crate::app::App;

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub admin_token: Arc<AdminToken>,
    /// Turns true when shutdown begins, so that endless responses (SSE)
    /// end and the server can drain.
    pub draining: watch::Receiver<bool>,
}
