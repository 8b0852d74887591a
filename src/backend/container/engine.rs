//! The connection to the container engine.
//!
//! The engine is at the address the sandbox was configured with, else at the default
//! socket `unix:///var/run/docker.sock`. The library reads no environment variable: the
//! command line passes `DOCKER_HOST` on (see [`crate::SandboxBuilder::from_env`]). bollard speaks the newest API version it
//! knows; older engines (Docker 20.10 speaks API 1.41) refuse it, so the version is
//! negotiated down once, at connection time, with `GET /version`.

use std::time::Duration;

use bollard::{ClientVersion, Docker};

/// The engine address used when none is configured.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Timeout of a single engine request (not of a run: the run's output is a stream).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the first contact (`GET /version`) may take before the engine is declared
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The engine could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the container engine at {host} ({origin})")]
pub struct EngineError {
    /// The address tried (`unix:///var/run/docker.sock`).
    pub host: String,
    /// Where the address came from (`default` or `configured`).
    pub origin: &'static str,
    /// Why.
    #[source]
    pub source: bollard::errors::Error,
}

/// A connected engine, with the API version agreed on.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    host: String,
    version: ClientVersion,
}

impl Engine {
    /// Connects to `host`, or to the default socket, and negotiates the API version.
    pub async fn connect(host: Option<&str>) -> Result<Self, EngineError> {
        let (host, origin) = resolve_host(host);
        let fail = |source| EngineError {
            host: host.clone(),
            origin,
            source,
        };
        let docker = connect_at(&host, bollard::API_DEFAULT_VERSION).map_err(fail)?;
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Ok(result) => result.map_err(fail)?,
            Err(_elapsed) => return Err(fail(bollard::errors::Error::RequestTimeoutError)),
        };
        let version = docker.client_version();
        Ok(Self {
            docker,
            host,
            version,
        })
    }

    /// A client for `host` (as in [`Engine::connect`]) speaking an API version already
    /// negotiated: no request is made.
    pub fn with_version(host: Option<&str>, version: &ClientVersion) -> Result<Self, EngineError> {
        let (host, origin) = resolve_host(host);
        let docker = connect_at(&host, version).map_err(|source| EngineError {
            host: host.clone(),
            origin,
            source,
        })?;
        Ok(Self {
            docker,
            host,
            version: *version,
        })
    }

    /// The client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The address connected to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The API version agreed on (e.g. 1.41).
    pub fn api_version(&self) -> &ClientVersion {
        &self.version
    }

    /// A new client for the same engine and API version, with its own connection pool.
    /// Used where the original client's connections may belong to a runtime that cannot
    /// make progress (the drop guard).
    pub fn reconnect(&self) -> Result<Docker, bollard::errors::Error> {
        connect_at(&self.host, &self.version)
    }
}

/// The address to use and where it came from.
pub fn resolve_host(explicit: Option<&str>) -> (String, &'static str) {
    match explicit {
        Some(host) if !host.is_empty() => (host.to_owned(), "configured"),
        _ => (DEFAULT_DOCKER_HOST.to_owned(), "default"),
    }
}

fn connect_at(host: &str, version: &ClientVersion) -> Result<Docker, bollard::errors::Error> {
    let timeout = REQUEST_TIMEOUT.as_secs();
    if host.starts_with("unix://") || host.starts_with('/') {
        Docker::connect_with_unix(host, timeout, version)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, timeout, version)
    } else {
        Err(bollard::errors::Error::UnsupportedURISchemeError {
            uri: host.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_host_wins() {
        assert_eq!(
            resolve_host(Some("unix:///x.sock")),
            ("unix:///x.sock".to_owned(), "configured")
        );
    }

    #[tokio::test]
    async fn missing_socket_names_the_socket() {
        let err = Engine::connect(Some("unix:///nonexistent/docker.sock"))
            .await
            .expect_err("no engine there");
        let text = err.to_string();
        assert!(text.contains("unix:///nonexistent/docker.sock"), "{text}");
    }
}
