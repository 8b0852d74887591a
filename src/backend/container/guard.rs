//! Removal of the container on every path.
//!
//! The normal paths (success, failure, deadline, output overflow) remove the container
//! explicitly with [`ContainerGuard::remove`]. Every other path — an early `?`, a panic, or
//! the run's future being dropped (the CLI drops it on Ctrl-C) — reaches `Drop`, which
//! removes the container synchronously before returning.
//!
//! The guard takes charge *before* the create request is sent ([`ContainerGuard::creating`]):
//! a future dropped while the engine is still creating the container (Ctrl-C at that very
//! moment) would otherwise leave a `Created` container that nobody owns. Such a guard,
//! dropped, removes by name and, while the engine answers that no such container exists
//! yet, asks again for a short while ([`CREATE_SETTLE`]): the request may still be on its
//! way.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;

use super::engine::Engine;

/// How long a guard dropped during its create request keeps asking the engine to remove a
/// container it does not know yet (a create normally takes tens of milliseconds).
pub const CREATE_SETTLE: Duration = Duration::from_secs(3);

/// Owns a created container until it is removed.
#[derive(Debug)]
pub struct ContainerGuard {
    engine: Engine,
    name: String,
    armed: bool,
    /// The create request may still be in flight: "no such container" is not yet final.
    creating: bool,
}

impl ContainerGuard {
    /// Takes charge of the container `name`.
    pub fn new(engine: Engine, name: String) -> Self {
        Self {
            engine,
            name,
            armed: true,
            creating: false,
        }
    }

    /// Takes charge of the container `name` before its create request is sent; call
    /// [`ContainerGuard::created`] once the engine has answered.
    pub fn creating(engine: Engine, name: String) -> Self {
        Self {
            engine,
            name,
            armed: true,
            creating: true,
        }
    }

    /// The engine has created the container.
    pub fn created(mut self) -> Self {
        self.creating = false;
        self
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

    /// Removes the container (killing it if it still runs). The guard stays in charge
    /// until the engine has answered: dropped mid-request, its drop removes.
    pub async fn remove(mut self) -> Result<(), bollard::errors::Error> {
        let removed = remove_now(self.engine.docker(), &self.name).await;
        self.armed = false;
        removed
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
        let settle = if self.creating {
            CREATE_SETTLE
        } else {
            Duration::ZERO
        };
        let removal = std::thread::Builder::new()
            .name("stratbox-container-cleanup".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| format!("cannot start a runtime: {err}"))?;
                let docker = engine.reconnect().map_err(|err| err.to_string())?;
                runtime
                    .block_on(remove_settled(&docker, &name, settle))
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
    remove_found(docker, name).await.map(drop)
}

/// Force-removes a container: `Ok(true)` when it was there (or already being removed),
/// `Ok(false)` when the engine knows no such container.
async fn remove_found(docker: &Docker, name: &str) -> Result<bool, bollard::errors::Error> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Removes `name`, asking again while the engine does not know it, for up to `settle`:
/// a create request sent just before may still be running.
async fn remove_settled(
    docker: &Docker,
    name: &str,
    settle: Duration,
) -> Result<(), bollard::errors::Error> {
    let until = Instant::now() + settle;
    while !remove_found(docker, name).await? && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
