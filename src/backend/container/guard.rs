//! Removal of the container on every path.
//!
//! The normal paths (success, failure, deadline, output overflow) remove the container
//! explicitly with [`ContainerGuard::remove`]. Every other path — an early `?`, a panic, or
//! the run's future being dropped (the CLI drops it on Ctrl-C) — reaches `Drop`, which
//! removes the container synchronously before returning.

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;

use super::engine::Engine;

/// Owns a created container until it is removed.
#[derive(Debug)]
pub struct ContainerGuard {
    engine: Engine,
    name: String,
    armed: bool,
}

impl ContainerGuard {
    /// Takes charge of the container `name`.
    pub fn new(engine: Engine, name: String) -> Self {
        Self {
            engine,
            name,
            armed: true,
        }
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same container in the charge of `engine` (a client of the current runtime: a
    /// warm container was created by the pool's filler, perhaps on another runtime).
    pub fn rebind(mut self, engine: Engine) -> Self {
        self.armed = false;
        Self::new(engine, std::mem::take(&mut self.name))
    }

    /// Gives up the charge without removing the container (someone else removes it).
    pub fn disarm(mut self) -> String {
        self.armed = false;
        std::mem::take(&mut self.name)
    }

    /// Removes the container (killing it if it still runs).
    pub async fn remove(mut self) -> Result<(), bollard::errors::Error> {
        self.armed = false;
        remove_now(self.engine.docker(), &self.name).await
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // The removal runs on a thread of its own, with its own runtime and its own
        // connection: the current runtime may be the one unwinding or blocked in this very
        // drop, so neither it nor its pooled connections can be relied on. Blocking here
        // for the one request is the price of not leaving a container behind.
        let engine = self.engine.clone();
        let name = std::mem::take(&mut self.name);
        let removal = std::thread::Builder::new()
            .name("stratbox-container-cleanup".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| format!("cannot start a runtime: {err}"))?;
                let docker = engine.reconnect().map_err(|err| err.to_string())?;
                runtime
                    .block_on(remove_now(&docker, &name))
                    .map_err(|err| format!("cannot remove container {name}: {err}"))
            });
        match removal.map(std::thread::JoinHandle::join) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(message))) => eprintln!("stratbox: {message}"),
            Ok(Err(_panic)) => eprintln!("stratbox: container cleanup thread panicked"),
            Err(err) => eprintln!("stratbox: cannot start the container cleanup thread: {err}"),
        }
    }
}

/// Force-removes a container; a container that is already gone (or being removed) is not
/// an error.
pub async fn remove_now(docker: &Docker, name: &str) -> Result<(), bollard::errors::Error> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(()),
        Err(err) => Err(err),
    }
}
