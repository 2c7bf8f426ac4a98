//! What a webhook may point at: the URL's shape, and which addresses are
//! refused (the SSRF guard, `docs/webhooks.md`).
//!
//! [`refusal`] is the one classification of addresses. The domain applies
//! it to an address written in the URL; the application layer applies it
//! to what a host name resolves to when an endpoint is registered, and the
//! senders at every attempt, to the addresses they then connect to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::text::FieldProblem;

/// Most characters in an endpoint's URL.
pub const MAX_URL_CHARS: usize = 2_048;

/// Why an address may not receive webhooks, or None when it may.
pub fn refusal(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [o1, o2, o3, _] = a.octets();
    if a.is_unspecified() || o1 == 0 {
        Some("an unspecified address (0.0.0.0/8)")
    } else if a.is_loopback() {
        Some("a loopback address (127.0.0.0/8)")
    } else if a.is_private() {
        Some("a private address (RFC 1918)")
    } else if a.is_link_local() {
        Some("a link-local address (169.254.0.0/16)")
    } else if a.is_multicast() {
        Some("a multicast address (224.0.0.0/4)")
    } else if a.is_broadcast() || o1 >= 240 {
        Some("a reserved or broadcast address (240.0.0.0/4)")
    } else if o1 == 100 && (64..128).contains(&o2) {
        Some("a shared address (100.64.0.0/10)")
    } else if o1 == 192 && o2 == 0 && o3 == 0 {
        Some("an IETF protocol address (192.0.0.0/24)")
    } else if (o1 == 192 && o2 == 0 && o3 == 2)
        || (o1 == 198 && o2 == 51 && o3 == 100)
        || (o1 == 203 && o2 == 0 && o3 == 113)
    {
        Some("a documentation address (RFC 5737)")
    } else if o1 == 198 && (o2 == 18 || o2 == 19) {
        Some("a benchmarking address (198.18.0.0/15)")
    } else if o1 == 192 && o2 == 88 && o3 == 99 {
        Some("a 6to4 relay anycast address (192.88.99.0/24)")
    } else {
        None
    }
}

fn refusal_v6(a: Ipv6Addr) -> Option<&'static str> {
    let segments = a.segments();
    // An IPv4 address written as IPv6 is judged as the IPv4 address.
    if let Some(v4) = a.to_ipv4_mapped() {
        return refusal_v4(v4);
    }
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    // And so does an IPv4-translated address (::ffff:0:a.b.c.d, RFC 2765).
    let embedded_last = || {
        let [.., hi, lo] = segments;
        Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
    };
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return refusal_v4(embedded_last());
    }
    // 6to4 (2002::/16) reaches the IPv4 address in bits 16..48.
    if segments[0] == 0x2002 {
        let v4 = Ipv4Addr::from((u32::from(segments[1]) << 16) | u32::from(segments[2]));
        return refusal_v4(v4);
    }
    if a.is_unspecified() {
        Some("an unspecified address (::)")
    } else if a.is_loopback() {
        Some("a loopback address (::1)")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("a unique local address (fc00::/7)")
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address (fe80::/10)")
    } else if segments[0] & 0xffc0 == 0xfec0 {
        Some("a site-local address (fec0::/10)")
    } else if a.is_multicast() {
        Some("a multicast address (ff00::/8)")
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        Some("a documentation address (2001:db8::/32)")
    } else if segments[0] & 0xfff0 == 0x3ff0 {
        Some("a documentation address (3fff::/20)")
    } else if segments[0] == 0x5f00 {
        Some("a segment routing address (5f00::/16)")
    } else if segments[0] == 0x2001 && segments[1] < 0x0200 {
        Some("an IETF protocol address (2001::/23, Teredo among them)")
    } else if segments[..3] == [0x64, 0xff9b, 1] {
        Some("a local-use NAT64 address (64:ff9b:1::/48)")
    } else if segments[..4] == [0x100, 0, 0, 0] {
        Some("a discard-only address (100::/64)")
    } else if segments[..6] == [0, 0, 0, 0, 0, 0] {
        // IPv4-compatible (deprecated) ::a.b.c.d
        refusal_v4(embedded_last())
    } else {
        None
    }
}

/// A URL an endpoint may be registered with, as the domain can judge it:
/// `http` or `https`, a host, no user name or password, no fragment, at
/// most [`MAX_URL_CHARS`]; and, unless `allow_private`, not an address
/// literal that [`refusal`] refuses. Returns the URL as parsed
/// (normalised: lower-case scheme and host, default port dropped).
pub fn check_url(value: &str, allow_private: bool) -> Result<Url, UrlProblem> {
    let trimmed = value.trim();
    let invalid = |message: &str| UrlProblem::Invalid(FieldProblem::new("url", message));
    if trimmed.is_empty() {
        return Err(invalid("is required"));
    }
    if trimmed.chars().take(MAX_URL_CHARS + 1).count() > MAX_URL_CHARS {
        return Err(invalid(&format!(
            "must be at most {MAX_URL_CHARS} characters"
        )));
    }
    let url = Url::parse(trimmed).map_err(|e| invalid(&format!("is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "must not hold a user name or password (the receiver verifies the signature instead)",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("must not have a fragment (#…)"));
    }
    let address = match url.host() {
        None => return Err(invalid("must name a host")),
        Some(Host::Domain(name)) => {
            // `localhost` and its subdomains are loopback by definition
            // (RFC 6761); no DNS answer can make them anything else.
            let name = name.trim_end_matches('.');
            if name == "localhost" || name.ends_with(".localhost") {
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
            } else {
                None
            }
        }
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if !allow_private {
        if let Some(reason) = address.and_then(refusal) {
            return Err(UrlProblem::Unsafe(format!(
                "{} is {reason}; webhooks are sent to public addresses only (PALISADE_WEBHOOKS_ALLOW_PRIVATE=true allows others)",
                url.host_str().unwrap_or_default()
            )));
        }
    }
    Ok(url)
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    /// Not a URL an endpoint can have (422 `validation_failed`).
    Invalid(FieldProblem),
    /// A URL that points at an address webhooks may not reach (422
    /// `unsafe_webhook_url`).
    Unsafe(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        matches!(check_url(url, false), Err(UrlProblem::Unsafe(_)))
    }

    #[test]
    fn the_issues_addresses_are_refused_without_the_override() {
        for url in [
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://169.254.169.254/",
            "http://[::1]/",
            "http://localhost:8080/hook",
            "http://api.localhost/",
            "http://0.0.0.0/",
            "http://192.168.1.10/",
            "http://172.16.0.1/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.1.2.3]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[64:ff9b:1::808:808]/",
            "http://[::ffff:0:7f00:1]/",
            "http://[2002:7f00:1::1]/",
            "http://[2002:a00:1::]/",
            "http://[2001::1]/",
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "http://[100::1]/",
            "http://[3fff::1]/",
            "http://[5f00::1]/",
            "http://192.88.99.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            // Forms a URL parser normalises to a refused address.
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
        ] {
            assert!(refused(url), "{url} should be refused");
        }
    }

    #[test]
    fn the_override_allows_private_addresses_but_not_bad_urls() {
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_url("http://[::1]/", true).is_ok());
        assert!(matches!(
            check_url("ftp://127.0.0.1/", true),
            Err(UrlProblem::Invalid(_))
        ));
    }

    #[test]
    fn public_addresses_and_names_pass() {
        for url in [
            "https://hooks.example.com/palisade",
            "https://93.184.216.34/x",
            "http://[2606:4700::1111]/",
            "http://[2002:5db8:d822::1]/",
            "https://example.com:8443/a?b=c",
        ] {
            assert!(check_url(url, false).is_ok(), "{url} should pass");
        }
    }

    #[test]
    fn shapes_a_webhook_cannot_have_are_invalid() {
        for url in [
            "",
            "hooks.example.com",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://user:pass@example.com/",
            "https://token@example.com/",
            "https://example.com/#frag",
            "gopher://example.com/",
        ] {
            assert!(
                matches!(check_url(url, false), Err(UrlProblem::Invalid(_))),
                "{url} should be invalid"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(matches!(
            check_url(&long, false),
            Err(UrlProblem::Invalid(_))
        ));
    }

    #[test]
    fn the_url_is_normalised() {
        let url = check_url("  HTTPS://Example.COM:443/Path ", false).unwrap();
        assert_eq!(url.as_str(), "https://example.com/Path");
    }
}
