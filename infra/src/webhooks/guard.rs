//! The SSRF guard at send time: a host name is resolved for each new
//! connection, and refused when any address it resolves to is one that
//! webhooks may not reach (`palisade_domain::webhook::refusal`). The HTTP
//! client connects only to the addresses this resolver returned, so a DNS
//! answer that changes between the check and the connection (rebinding)
//! cannot reach a refused address. Address literals in a URL are judged by
//! `check_url` before the request is made.

use std::net::SocketAddr;
use std::sync::Arc;

use palisade_domain::webhook::refusal;

/// Why a host may not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// It does not resolve (now).
    #[error("{0}")]
    Unresolvable(String),
    /// It resolves to an address webhooks may not reach.
    #[error("{0}")]
    Unsafe(String),
}

/// How long a host name may take to resolve (registration waits for it).
pub const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves `host` and checks every address: the addresses, or why not.
pub async fn resolve_checked(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Refused> {
    let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| {
            Refused::Unresolvable(format!(
                "{host} did not resolve within {} s",
                LOOKUP_TIMEOUT.as_secs()
            ))
        })?;
    let addresses: Vec<SocketAddr> = lookup
        .map_err(|e| Refused::Unresolvable(format!("{host} does not resolve: {e}")))?
        .collect();
    if addresses.is_empty() {
        return Err(Refused::Unresolvable(format!(
            "{host} resolves to no address"
        )));
    }
    if !allow_private {
        for address in &addresses {
            if let Some(reason) = refusal(address.ip()) {
                return Err(Refused::Unsafe(format!(
                    "{host} resolves to {}, {reason}; webhooks are sent to public addresses only (PALISADE_WEBHOOKS_ALLOW_PRIVATE=true allows others)",
                    address.ip()
                )));
            }
        }
    }
    Ok(addresses)
}

/// The HTTP client's resolver: [`resolve_checked`] for every connection.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses = resolve_checked(name.as_str(), 0, allow_private)
                .await
                .map_err(|refused| Box::new(refused) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The certificates of a PEM bundle, or why it holds none.
pub fn roots_from_pem(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let roots = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if roots.is_empty() {
        return Err("holds no PEM certificate".to_string());
    }
    Ok(roots)
}

/// The client every sender posts with: no redirects, no proxy (a proxy
/// would resolve the host itself), the attempt timeout, the guard; TLS
/// (rustls) trusting the built-in public roots and `extra_roots_pem`.
pub fn client(
    allow_private: bool,
    extra_roots_pem: Option<&[u8]>,
) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(pem) = extra_roots_pem {
        for root in reqwest::Certificate::from_pem_bundle(pem)? {
            builder = builder.add_root_certificate(root);
        }
    }
    builder
        .use_rustls_tls()
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(super::ATTEMPT_TIMEOUT)
        .connect_timeout(super::ATTEMPT_TIMEOUT)
        .user_agent(concat!("Palisade-Webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(super::IN_FLIGHT_PER_ENDPOINT)
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .build()
}

/// The refusal inside a failed request, if the guard refused it.
pub fn refused_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(refused) = error.downcast_ref::<Refused>() {
            return Some(refused.to_string());
        }
        source = error.source();
    }
    None
}
