use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Backend;

/// The `palisade` binary: `PALISADE_BIN`, or the one cargo built beside the tests.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("PALISADE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("palisade");
    assert!(
        path.exists(),
        "{} does not exist: build it first (`cargo build -p palisade-api`, as scripts/test does)",
        path.display()
    );
    path
}

/// The admin token of servers started with [`Server::start_admin`].
pub const ADMIN_TOKEN: &str = "tok";

/// How a test request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    Admin,
    /// `X-API-Key: <key>`.
    ApiKey(&'a str),
    /// `Authorization: Bearer <key>`.
    Bearer(&'a str),
}

#[derive(Default, Clone)]
pub struct ServerOptions {
    pub env: Vec<(String, String)>,
    pub admin_token: Option<String>,
}

/// A running `palisade serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub base_url: String,
    pub admin_token: String,
    log: Arc<Mutex<String>>,
    pub http: reqwest::Client,
    /// What it was started with, for [`Server::restart`].
    options: ServerOptions,
}

impl Server {
    pub async fn start(backend: &Backend) -> Self {
        Self::start_with(backend, ServerOptions::default()).await
    }

    /// A server whose admin token is [`ADMIN_TOKEN`].
    pub async fn start_admin(backend: &Backend) -> Self {
        let options = ServerOptions {
            admin_token: Some(ADMIN_TOKEN.into()),
            ..Default::default()
        };
        Self::start_with(backend, options).await
    }

    /// Creates a tenant on `plan` through the admin API; its id and the
    /// owner's key.
    pub async fn create_tenant(&self, name: &str, plan: &str) -> (String, String) {
        let body = serde_json::json!({ "name": name, "plan": plan });
        let (status, body) = self.admin_post("/v1/admin/tenants", body).await;
        assert_eq!(status, 201, "{body}");
        let data = &body["data"];
        (
            data["tenant"]["id"].as_str().unwrap().to_string(),
            data["api_key"]["key"].as_str().unwrap().to_string(),
        )
    }

    /// Issues an API key with `scopes` through `POST /v1/api-keys`, as the
    /// holder of key `by`; the new key's id and value.
    pub async fn issue_api_key(&self, by: &str, name: &str, scopes: &[&str]) -> (String, String) {
        let body = serde_json::json!({ "name": name, "principal": name, "scopes": scopes });
        self.issue_api_key_with(by, body).await
    }

    /// Issues an API key described by `body` (the request as sent), as the
    /// holder of key `by`; the new key's id and value.
    pub async fn issue_api_key_with(&self, by: &str, body: serde_json::Value) -> (String, String) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/api-keys",
                Auth::ApiKey(by),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let data = &body["data"];
        (
            data["id"].as_str().unwrap().to_string(),
            data["key"].as_str().unwrap().to_string(),
        )
    }

    /// `POST path` with key `key` and `Idempotency-Key: idempotency_key`:
    /// the status, whether the answer was a replay, and the JSON body.
    pub async fn post_idempotent(
        &self,
        path: &str,
        key: &str,
        idempotency_key: &str,
        body: &serde_json::Value,
    ) -> (u16, bool, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("x-api-key", key)
            .header("idempotency-key", idempotency_key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        (status, replayed, response.json().await.unwrap())
    }

    /// The Prometheus text of `GET /metrics` (with the admin token).
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    }

    /// Revokes key `id` through `DELETE /v1/api-keys/{id}`, as the holder
    /// of key `by`.
    pub async fn revoke_api_key(&self, by: &str, id: &str) {
        let path = format!("/v1/api-keys/{id}");
        let (status, body) = self
            .call(reqwest::Method::DELETE, &path, Auth::ApiKey(by), None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"]["revoked_at"].is_string(), "{body}");
    }

    pub async fn start_with(backend: &Backend, options: ServerOptions) -> Self {
        let started_with = options.clone();
        let mut command = Command::new(binary());
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,sqlx=warn")
            .env("PALISADE_FEED_POLL_MS", "200")
            .env("PALISADE_PROJECTION_LOCK_RETRY_MS", "500")
            .envs(backend.env())
            .envs(options.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = &options.admin_token {
            command.env("PALISADE_ADMIN_TOKEN", token);
        }
        let data_dir = backend
            .env()
            .into_iter()
            .find(|(k, _)| k == "PALISADE_DATA_DIR")
            .map(|(_, v)| v);
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut address_tx = Some(address_tx);
            // Keep draining so the server never blocks on a full pipe.
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let address = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    if let Some(tx) = address_tx.take() {
                        let _ = tx.send(address);
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let address = match tokio::time::timeout(Duration::from_secs(60), address_rx).await {
            Ok(Ok(address)) => address,
            _ => panic!(
                "the server did not start; its log:\n{}",
                log.lock().unwrap()
            ),
        };
        let admin_token = match options.admin_token {
            Some(token) => token,
            None => {
                let dir = data_dir.expect("a data dir");
                std::fs::read_to_string(PathBuf::from(dir).join("admin-token")).unwrap()
            }
        };
        Self {
            child,
            base_url: format!("http://{address}"),
            admin_token: admin_token.trim().to_string(),
            log,
            http: reqwest::Client::new(),
            options: started_with,
        }
    }

    /// Crashes the server: `SIGKILL`, so nothing is drained, flushed or
    /// checkpointed; returns once the process is reaped.
    pub async fn kill9(&mut self) {
        if let Err(error) = self.child.kill().await {
            panic!("kill -9 of the server failed: {error}");
        }
    }

    /// `kill -9`s the server (unless it has exited already) and starts a new
    /// one on `backend` with the same options; it listens on a new port
    /// ([`Server::base_url`] changes). [`Server::log`] keeps the old log in
    /// front of the new one.
    pub async fn restart(&mut self, backend: &Backend) {
        self.kill9().await;
        let previous = self.log();
        let next = Self::start_with(backend, self.options.clone()).await;
        next.log
            .lock()
            .unwrap()
            .insert_str(0, &format!("{previous}--- restarted ---\n"));
        *self = next;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Any request; returns status and JSON body (every answer is JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.call_with_headers(method, path, auth, &[], body).await
    }

    /// [`Server::call`] with extra request headers.
    pub async fn call_with_headers(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: Auth<'_>,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, self.url(path));
        request = match auth {
            Auth::None => request,
            Auth::Admin => request.bearer_auth(&self.admin_token),
            Auth::ApiKey(key) => request.header("x-api-key", key),
            Auth::Bearer(key) => request.bearer_auth(key),
        };
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{path} answered {status} with a non-JSON body ({e}): {text}")
        });
        (status, body)
    }

    /// `GET` with the admin token; returns status and JSON body.
    pub async fn admin_get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// `POST` JSON with the admin token; returns status and JSON body.
    pub async fn admin_post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Sends a signal (`kill -s`) to the server process.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {name} failed");
    }

    /// Waits for the process to exit; its exit code.
    pub async fn wait(&mut self, limit: Duration) -> Option<i32> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => None,
        }
    }
}
