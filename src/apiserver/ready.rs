//! Whether the apiserver serves: an HTTPS GET of `/readyz` on its secure
//! port, on loopback.
//!
//! The request carries no credentials, so the serving certificate is not
//! verified: nothing secret is sent, the address is the node's own, and the
//! apiserver's certificate is usually for its service names, not for
//! `127.0.0.1`. 200 means ready. 401 and 403 mean the server is up and its
//! authentication or authorization runs (the real v1.32 answers 401 to an
//! unauthenticated `/readyz` with anonymous auth off, as with
//! `--authorization-mode=AlwaysAllow`); any other answer, or none, means
//! not ready yet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::verify;

/// Whether the apiserver lets requests without credentials in as
/// `system:anonymous` (answered 403 when not allowed) rather than refusing
/// them with 401: `--anonymous-auth` (default true), turned off by
/// kube-apiserver when the `AlwaysAllow` authorizer is in use, which is
/// the default without `--authorization-mode` or `--authorization-config`
/// (`pkg/kubeapiserver/options/authentication.go`, `ApplyAuthorization`).
/// A guess from the flags: the probe's answer has the last word.
pub fn anonymous_auth(argv: &[String]) -> bool {
    let last = |name: &str| {
        verify::occurrences(argv, name, name == "anonymous-auth")
            .last()
            .cloned()
    };
    if last("anonymous-auth")
        .is_some_and(|v| matches!(v.as_str(), "false" | "0" | "f" | "F" | "FALSE" | "False"))
    {
        return false;
    }
    match last("authorization-mode") {
        Some(m) => !m.split(',').any(|a| a.trim() == "AlwaysAllow"),
        None => last("authorization-config").is_some(),
    }
}

/// kube-apiserver's default `--secure-port` (`pkg/kubeapiserver/options/serving.go`).
pub const DEFAULT_SECURE_PORT: u16 = 6443;

/// Where to probe: the address and port of the secure listener.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl Endpoint {
    /// From a running apiserver's argv: the effective (last) `--secure-port`
    /// and `--bind-address`, in any pflag spelling. An unspecified bind
    /// address (`0.0.0.0`, `::`, empty: all interfaces) is probed on loopback.
    pub fn from_argv(argv: &[String]) -> Result<Endpoint, String> {
        let port = match verify::occurrences(argv, "secure-port", false).last() {
            None => DEFAULT_SECURE_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("--secure-port={p} is not a port to probe")),
            },
        };
        let addr = match verify::occurrences(argv, "bind-address", false).last() {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(a) if a.is_empty() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(a) => match a.parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                Ok(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                Ok(ip) => ip,
                Err(_) => return Err(format!("--bind-address={a} is not an IP address")),
            },
        };
        Ok(Endpoint { addr, port })
    }

    pub fn url(&self) -> String {
        match self.addr {
            IpAddr::V4(a) => format!("https://{a}:{}/readyz", self.port),
            IpAddr::V6(a) => format!("https://[{a}]:{}/readyz", self.port),
        }
    }
}

/// One answer of `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200, or 401/403 (serving; anonymous requests refused).
    Ready(u16),
    /// Serving but not ready: the status and the first line of the body.
    NotReady(u16, String),
    /// No HTTP answer: refused, timed out, TLS failed.
    Unreachable(String),
}

impl Answer {
    pub fn is_ready(&self) -> bool {
        matches!(self, Answer::Ready(_))
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Ready(200) => f.write_str("HTTP 200"),
            Answer::Ready(c) => write!(f, "HTTP {c} (serving; anonymous requests refused)"),
            Answer::NotReady(c, body) if body.is_empty() => write!(f, "HTTP {c}"),
            Answer::NotReady(c, body) => write!(f, "HTTP {c}: {body}"),
            Answer::Unreachable(e) => write!(f, "no answer: {e}"),
        }
    }
}

/// Reads a status into an answer (pure, for the tests).
pub fn classify(status: u16, body: &str) -> Answer {
    match status {
        200 | 401 | 403 => Answer::Ready(status),
        _ => {
            let line = body
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            Answer::NotReady(status, line.chars().take(200).collect())
        }
    }
}

/// An HTTPS client for loopback probes: no proxy, no certificate check,
/// short timeouts. ureq with rustls (ring): a kept, synchronous client
/// that links statically with musl, and has no runtime to start.
pub struct Prober {
    agent: ureq::Agent,
}

impl Prober {
    pub fn new(timeout: Duration) -> Prober {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .disable_verification(true)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!(
                "kaudit-node/",
                env!("CARGO_PKG_VERSION"),
                " (readiness)"
            ))
            .build()
            .new_agent();
        Prober { agent }
    }

    /// One request without credentials, with `user_agent`: the HTTP status.
    pub fn send(
        &self,
        ep: &Endpoint,
        method: &str,
        path: &str,
        user_agent: &str,
    ) -> Result<u16, String> {
        let url = match ep.addr {
            IpAddr::V4(a) => format!("https://{a}:{}{path}", ep.port),
            IpAddr::V6(a) => format!("https://[{a}]:{}{path}", ep.port),
        };
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("User-Agent", user_agent)
            .body(())
            .map_err(|e| e.to_string())?;
        self.agent
            .run(req)
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    }

    /// One GET of `/readyz`.
    pub fn probe(&self, ep: &Endpoint) -> Answer {
        match self.agent.get(ep.url()).call() {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                classify(status, &body)
            }
            Err(e) => Answer::Unreachable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn endpoint_from_the_effective_flags() {
        let ep = |a: &[&str]| Endpoint::from_argv(&argv(a)).map(|e| e.url());
        assert_eq!(ep(&["/k"]).unwrap(), "https://127.0.0.1:6443/readyz");
        assert_eq!(
            ep(&["/k", "--bind-address=0.0.0.0", "--secure-port", "7443"]).unwrap(),
            "https://127.0.0.1:7443/readyz"
        );
        assert_eq!(
            ep(&["/k", "--bind_address=::", "--secure_port=443"]).unwrap(),
            "https://[::1]:443/readyz"
        );
        assert_eq!(
            ep(&["/k", "--bind-address=10.0.0.5", "--bind-address=192.0.2.1"]).unwrap(),
            "https://192.0.2.1:6443/readyz"
        );
        assert!(ep(&["/k", "--secure-port=0"]).is_err());
        assert!(ep(&["/k", "--bind-address=apiserver.local"]).is_err());
    }

    #[test]
    fn answers() {
        assert!(classify(200, "ok").is_ready());
        assert!(classify(401, "").is_ready());
        assert!(classify(403, "{}").is_ready());
        assert_eq!(
            classify(
                500,
                "[+]ping ok\n[-]poststarthook/rbac failed\nreadyz check failed\n"
            ),
            Answer::NotReady(500, "readyz check failed".into())
        );
        assert!(!classify(503, "").is_ready());
    }

    #[test]
    fn nothing_listening_is_unreachable() {
        // A port nobody listens on: bind one, learn it, close it.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let a = Prober::new(Duration::from_secs(2)).probe(&Endpoint {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
        });
        assert!(matches!(a, Answer::Unreachable(_)), "{a:?}");
    }
}
