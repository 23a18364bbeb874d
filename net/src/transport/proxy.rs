//! HTTP proxies: which one the environment or the system names for a
//! relay, and a CONNECT tunnel through it (with Basic authentication).
//!
//! Only Basic proxy authentication is supported (credentials in the proxy
//! URL, `http://user:password@proxy:3128`); NTLM and Negotiate are not.

use std::fmt;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpStream;
use url::Url;

/// Where the proxy setting comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxySetting {
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` honouring `NO_PROXY`, then the
    /// operating system's settings (Windows, macOS).
    #[default]
    Auto,
    /// Never use a proxy.
    Off,
    /// This proxy URL.
    Url(String),
}

/// A proxy to tunnel through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    credentials: Option<(String, String)>,
}

impl fmt::Display for Proxy {
    /// Host and port only: credentials never go into messages or logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Proxy({self}, credentials: {})",
            self.credentials.is_some()
        )
    }
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProxyError {
    #[error("invalid proxy URL '{0}'")]
    BadUrl(String),
    #[error("cannot reach the proxy {proxy}")]
    Connect {
        proxy: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the proxy {proxy} did not answer in time")]
    Timeout { proxy: String },
    #[error(
        "the proxy {proxy} refused the credentials (HTTP {status}): check the user name and password in the proxy setting"
    )]
    BadCredentials { proxy: String, status: u16 },
    #[error(
        "the proxy {proxy} wants credentials (HTTP {status}): put them in the proxy URL, http://user:password@{proxy}"
    )]
    CredentialsRequired { proxy: String, status: u16 },
    #[error("the proxy {proxy} refused the tunnel (HTTP {status})")]
    Refused { proxy: String, status: u16 },
    #[error("the proxy {proxy} answered with something that is not HTTP")]
    Protocol {
        proxy: String,
        #[source]
        source: async_http_proxy::HttpError,
    },
}

impl ProxyError {
    /// Whether trying again through this proxy (on another port) is
    /// pointless: the user must fix the setting.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ProxyError::BadCredentials { .. }
                | ProxyError::CredentialsRequired { .. }
                | ProxyError::BadUrl(_)
        )
    }
}

fn parse_proxy_url(raw: &str) -> Result<Proxy, ProxyError> {
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| ProxyError::BadUrl(raw.to_owned()))?;
    let host = url
        .host_str()
        .ok_or_else(|| ProxyError::BadUrl(raw.to_owned()))?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(8080);
    let decode = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default()
    };
    let credentials = if url.username().is_empty() {
        None
    } else {
        Some((decode(url.username()), decode(url.password().unwrap_or(""))))
    };
    Ok(Proxy {
        host,
        port,
        credentials,
    })
}

/// The proxy for reaching the relay `host` (over TLS, on any port), if any.
pub fn proxy_for(setting: &ProxySetting, host: &str) -> Result<Option<Proxy>, ProxyError> {
    match setting {
        ProxySetting::Off => Ok(None),
        ProxySetting::Url(raw) => parse_proxy_url(raw).map(Some),
        ProxySetting::Auto => {
            if no_proxy_matches(host) {
                return Ok(None);
            }
            // Everything to the relay is TLS, so the HTTPS proxy comes first
            // whatever the port; a plain HTTP proxy tunnels TLS as well.
            for var in [
                "HTTPS_PROXY",
                "https_proxy",
                "ALL_PROXY",
                "all_proxy",
                "HTTP_PROXY",
                "http_proxy",
            ] {
                if let Ok(raw) = std::env::var(var)
                    && !raw.trim().is_empty()
                {
                    return parse_proxy_url(raw.trim()).map(Some);
                }
            }
            Ok(system_proxy())
        }
    }
}

/// Whether `NO_PROXY`/`no_proxy` excludes `host`: `*`, the host itself,
/// or a domain suffix (`.example.com` and `example.com` both match
/// `relay.example.com`), as curl reads it.
fn no_proxy_matches(host: &str) -> bool {
    let list = std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .unwrap_or_default();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|e| {
            e == "*"
                || host == e.trim_start_matches('.')
                || host.ends_with(&format!(".{}", e.trim_start_matches('.')))
        })
}

/// The operating system's proxy setting (Windows registry, macOS system
/// configuration); none on other systems, whose desktop settings are
/// exported as environment variables.
fn system_proxy() -> Option<Proxy> {
    #[cfg(any(windows, target_os = "macos"))]
    {
        if let Ok(p) = sysproxy::Sysproxy::get_system_proxy()
            && p.enable
            && !p.host.is_empty()
        {
            return Some(Proxy {
                host: p.host,
                port: p.port,
                credentials: None,
            });
        }
    }
    None
}

/// Opens a tunnel to `host:port` through `proxy` with HTTP CONNECT.
pub async fn tunnel(
    proxy: &Proxy,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, ProxyError> {
    let name = proxy.to_string();
    let work = async {
        let mut stream = TcpStream::connect((proxy.host.as_str(), proxy.port))
            .await
            .map_err(|source| ProxyError::Connect {
                proxy: name.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let result = match &proxy.credentials {
            Some((user, password)) => {
                async_http_proxy::http_connect_tokio_with_basic_auth(
                    &mut stream,
                    host,
                    port,
                    user,
                    password,
                )
                .await
            }
            None => async_http_proxy::http_connect_tokio(&mut stream, host, port).await,
        };
        match result {
            Ok(()) => Ok(stream),
            Err(async_http_proxy::HttpError::HttpCode200(status @ (401 | 407))) => {
                Err(if proxy.credentials.is_some() {
                    ProxyError::BadCredentials {
                        proxy: name.clone(),
                        status,
                    }
                } else {
                    ProxyError::CredentialsRequired {
                        proxy: name.clone(),
                        status,
                    }
                })
            }
            Err(async_http_proxy::HttpError::HttpCode200(status)) => Err(ProxyError::Refused {
                proxy: name.clone(),
                status,
            }),
            Err(source) => Err(ProxyError::Protocol {
                proxy: name.clone(),
                source,
            }),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ProxyError::Timeout {
            proxy: name.clone(),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_with_and_without_credentials() {
        let p = parse_proxy_url("http://ann:s%40cret@proxy.example:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 3128));
        assert_eq!(p.credentials, Some(("ann".into(), "s@cret".into())));
        assert_eq!(
            p.to_string(),
            "proxy.example:3128",
            "no credentials in messages"
        );
        let p = parse_proxy_url("10.0.0.1:8080").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.credentials),
            ("10.0.0.1", 8080, None)
        );
        assert!(parse_proxy_url("http://").is_err());
        assert_eq!(
            proxy_for(&ProxySetting::Url("p:1".into()), "relay")
                .unwrap()
                .unwrap()
                .port,
            1
        );
        assert_eq!(proxy_for(&ProxySetting::Off, "relay").unwrap(), None);
    }
}
