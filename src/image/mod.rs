//! Offline build of the container backend's runtime image.
//!
//! No container registry is assumed. The root file system is bootstrapped from Debian
//! packages with `mmdebstrap` (Debian trixie's minbase variant plus python3, numpy, pandas
//! and tini, an unprivileged `strategy` user and the shared runner at
//! `/opt/stratbox/runner.py`), stripped of every program but python3 and tini
//! (`finish.py`, see [`recipe::FINISH_PY`]), written to a tar file and imported into the
//! engine (the `docker import` equivalent), tagged `stratbox-runtime:<12 hex digits>`. The
//! digits are a SHA-256 of the inputs (recipe version, suite, packages, mmdebstrap options,
//! import changes, the finishing script, runner bytes) and not of the mirror, so an image is
//! rebuilt exactly when its inputs change. The versions the finished image runs (CPython,
//! numpy, pandas) are measured by its own python3 during the build and stored as labels
//! ([`ImageFacts`]); they are outputs, not inputs, so they are not part of the tag.
//!
//! Host requirements: `mmdebstrap` (Debian package of the same name), run as root (or
//! as a user with subordinate ids, in which case mmdebstrap picks its unshare mode), and
//! a reachable Debian archive as configured in the host's APT sources
//! (see [`sources`]).

pub mod recipe;
pub mod sources;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};

pub use recipe::Recipe;
pub use sources::MirrorSet;

/// The shared runner, embedded so that the image tag follows its bytes.
pub const RUNNER_PY: &str = include_str!("../../wasm/runner.py");

/// The program that bootstraps the root file system.
pub const MMDEBSTRAP: &str = "mmdebstrap";

/// How many hex digits of the input hash go into the tag.
pub const TAG_HEX_DIGITS: usize = 12;

/// How often import progress is reported.
const IMPORT_PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Size of the chunks the root file system is streamed to the engine in.
const IMPORT_CHUNK_BYTES: usize = 1 << 20;

/// How many warning/error lines of mmdebstrap's output are kept for the error message.
const SUMMARY_LINES: usize = 20;

/// Errors of the image build. A build that cannot finish is always an error: there is no
/// partial image (the tag is set only by a complete import).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The engine refused or could not be reached.
    #[error("container engine error while {action}")]
    Engine {
        /// What was being done (`inspecting image stratbox-runtime:…`).
        action: String,
        /// The client error.
        #[source]
        source: bollard::errors::Error,
    },
    /// A host tool the build needs is not installed.
    #[error(
        "`{command}` is not installed on this host; install it with `apt-get install {package}`"
    )]
    MissingTool {
        /// The program or file that was looked for.
        command: String,
        /// The Debian package that provides it.
        package: String,
    },
    /// An APT source file could not be read.
    #[error("cannot read the APT sources file {}", path.display())]
    ReadSources {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No configured source serves the suite the image is built from.
    #[error(
        "no APT source with component `main` serves suite `{suite}` (read: {})",
        files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoMirror {
        /// The suite looked for.
        suite: String,
        /// The files that were read.
        files: Vec<PathBuf>,
    },
    /// The build's scratch directory or log file could not be prepared.
    #[error("cannot prepare {}", path.display())]
    WorkDir {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// mmdebstrap could not be started or its output could not be read.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// mmdebstrap ran and failed.
    #[error(
        "`{command}` failed ({status}); full log: {}{}",
        log.display(),
        if summary.is_empty() { String::new() } else { format!("\n{summary}") }
    )]
    Bootstrap {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The full log of the build.
        log: PathBuf,
        /// The last warning and error lines.
        summary: String,
    },
    /// The finished root file system did not report its versions (the build's last
    /// step, `finish.py facts`, printed something else).
    #[error(
        "the image build did not record its versions in {}: expected python=, numpy= and \
         pandas= lines, found {text:?}",
        path.display()
    )]
    Facts {
        /// The facts file.
        path: PathBuf,
        /// What it held.
        text: String,
    },
    /// The engine did not accept the root file system.
    #[error("importing {} as {tag} failed", tar.display())]
    Import {
        /// The tar file.
        tar: PathBuf,
        /// The tag it was to get.
        tag: String,
        /// The client error.
        #[source]
        source: bollard::errors::Error,
    },
}

/// The inputs of the image. The builder-less default, [`ImageSpec::current`], is the
/// image this version of stratbox runs strategies in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Suite, packages, options.
    pub recipe: Recipe,
    /// The runner script copied to `/opt/stratbox/runner.py`.
    pub runner: String,
}

impl ImageSpec {
    /// The image of this build of stratbox: the embedded runner and the current recipe.
    pub fn current() -> Self {
        Self {
            recipe: Recipe::current(),
            runner: RUNNER_PY.to_owned(),
        }
    }

    /// Full SHA-256 (hex) of the inputs.
    pub fn inputs_sha256(&self) -> String {
        let runner_sha = hex(&Sha256::digest(self.runner.as_bytes()));
        let mut h = Sha256::new();
        h.update(self.recipe.fingerprint().as_bytes());
        h.update(format!("runner-sha256={runner_sha}\n").as_bytes());
        hex(&h.finalize())
    }

    /// `stratbox-runtime:<first 12 hex digits of the input hash>`.
    pub fn tag(&self) -> String {
        let sha = self.inputs_sha256();
        format!("{}:{}", recipe::IMAGE_REPO, &sha[..TAG_HEX_DIGITS])
    }
}

/// What the finished image runs, measured at build time by its own python3 and stored as
/// image labels (`org.stratbox.python`, `.numpy`, `.pandas`, `.suite`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// CPython's version, `3.13.5`.
    pub python: String,
    /// numpy's version.
    pub numpy: String,
    /// pandas's version.
    pub pandas: String,
    /// The Debian suite the image was built from.
    pub suite: String,
}

/// Prefix of the image labels that carry [`ImageFacts`].
pub const LABEL_PREFIX: &str = "org.stratbox.";

impl ImageFacts {
    /// Reads the `key=value` lines `finish.py facts` prints; `None` if one is missing or a
    /// value is not a plain version.
    pub fn parse(suite: &str, text: &str) -> Option<Self> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
                .filter(|v| is_version(v))
        };
        Some(Self {
            python: get("python")?,
            numpy: get("numpy")?,
            pandas: get("pandas")?,
            suite: suite.to_owned(),
        })
    }

    /// The facts from an image's labels; `None` for an image built without them.
    pub fn from_labels(labels: &std::collections::HashMap<String, String>) -> Option<Self> {
        let get = |key: &str| {
            labels
                .get(&format!("{LABEL_PREFIX}{key}"))
                .filter(|v| is_version(v))
                .cloned()
        };
        Some(Self {
            python: get("python")?,
            numpy: get("numpy")?,
            pandas: get("pandas")?,
            suite: get("suite")?,
        })
    }

    /// The labels stored on the image.
    pub fn labels(&self) -> impl Iterator<Item = (String, &str)> {
        [
            ("python", &self.python),
            ("numpy", &self.numpy),
            ("pandas", &self.pandas),
            ("suite", &self.suite),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), v.as_str()))
    }

    /// The language level, `3.13`: what the outcome's `python` field says.
    pub fn python_level(&self) -> String {
        python_level(&self.python)
    }
}

/// `3.13.5` → `3.13` (a string without a second dot is returned whole).
pub fn python_level(version: &str) -> String {
    let mut parts = version.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => version.to_owned(),
    }
}

/// Letters, digits, dots, `+`, `-` and `~` only, and not empty: a value that can be a label
/// and printed without quoting.
fn is_version(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-~".contains(c))
}

/// The [`ImageFacts`] of the image tagged `tag`: `Ok(None)` when the image has no such
/// labels, [`ImageError::Engine`] when it cannot be inspected (a 404 included).
pub async fn facts(docker: &Docker, tag: &str) -> Result<Option<ImageFacts>, ImageError> {
    let image = docker
        .inspect_image(tag)
        .await
        .map_err(|source| ImageError::Engine {
            action: format!("inspecting image {tag}"),
            source,
        })?;
    Ok(image
        .config
        .and_then(|c| c.labels)
        .and_then(|labels| ImageFacts::from_labels(&labels)))
}

/// Whether the engine has the image a spec describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStatus {
    /// The tag exists.
    Current {
        /// The image id.
        id: String,
    },
    /// The tag does not exist, but other `stratbox-runtime` images do (built from other
    /// inputs: another runner or recipe).
    Stale {
        /// Their tags.
        found: Vec<String>,
    },
    /// No `stratbox-runtime` image at all.
    Missing,
}

/// The result of [`build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The tag.
    pub tag: String,
    /// The image id.
    pub id: String,
    /// False when the image was already current and nothing was done.
    pub rebuilt: bool,
    /// Image size as the engine reports it.
    pub size_bytes: Option<u64>,
    /// Time the call took.
    pub elapsed: Duration,
    /// The mmdebstrap log, when a bootstrap ran.
    pub log: Option<PathBuf>,
    /// Older `stratbox-runtime` images (other inputs) removed after the build; one still
    /// used by a container is kept.
    pub removed: Vec<String>,
}

/// Build steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Looking for the tools and the mirror.
    Preparing,
    /// mmdebstrap is building the root file system.
    Bootstrapping,
    /// The tar is streamed to the engine.
    Importing,
    /// The image is tagged and ready.
    Done,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Preparing => "preparing",
            Stage::Bootstrapping => "bootstrapping the root file system (mmdebstrap)",
            Stage::Importing => "importing into the engine",
            Stage::Done => "done",
        })
    }
}

/// What [`build`] reports while it works; `elapsed` counts from the start of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A new stage started.
    Stage {
        /// The stage.
        stage: Stage,
        /// Time since the build started.
        elapsed: Duration,
    },
    /// A status line from mmdebstrap (its `I:`, `W:` and `E:` lines, shortened).
    Bootstrap {
        /// The line.
        message: String,
        /// Time since the build started.
        elapsed: Duration,
    },
    /// Bytes of the root file system sent to the engine so far.
    Import {
        /// Sent so far.
        sent_bytes: u64,
        /// Size of the tar.
        total_bytes: u64,
        /// Time since the build started.
        elapsed: Duration,
    },
}

/// Whether the engine has the image of `spec`.
pub async fn status(docker: &Docker, spec: &ImageSpec) -> Result<ImageStatus, ImageError> {
    let tag = spec.tag();
    match docker.inspect_image(&tag).await {
        Ok(img) => Ok(ImageStatus::Current {
            id: img.id.unwrap_or_default(),
        }),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            let found = runtime_tags(docker).await?;
            if found.is_empty() {
                Ok(ImageStatus::Missing)
            } else {
                Ok(ImageStatus::Stale { found })
            }
        }
        Err(source) => Err(ImageError::Engine {
            action: format!("inspecting image {tag}"),
            source,
        }),
    }
}

/// All `stratbox-runtime:*` tags the engine has.
async fn runtime_tags(docker: &Docker) -> Result<Vec<String>, ImageError> {
    let filters = std::collections::HashMap::from([(
        "reference".to_owned(),
        vec![recipe::IMAGE_REPO.to_owned()],
    )]);
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(|source| ImageError::Engine {
            action: format!("listing {} images", recipe::IMAGE_REPO),
            source,
        })?;
    let mut tags: Vec<String> = images
        .into_iter()
        .flat_map(|i| i.repo_tags)
        .filter(|t| t.starts_with(&format!("{}:", recipe::IMAGE_REPO)))
        .collect();
    tags.sort();
    Ok(tags)
}

/// Builds the image of `spec` unless the engine already has it (`force` rebuilds anyway).
///
/// Takes minutes (about two on a 2-core machine with a nearby mirror); `progress` hears
/// about every stage and mmdebstrap status line. The full mmdebstrap output goes to a log
/// file under the user's cache directory, named in [`Built::log`] and in
/// [`ImageError::Bootstrap`]. After a successful build, older `stratbox-runtime` images
/// (built from other inputs) are removed, except any a container still uses, unless
/// `keep_old` is set (another stratbox version on the same engine may still use them).
pub async fn build(
    docker: &Docker,
    spec: &ImageSpec,
    force: bool,
    keep_old: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Built, ImageError> {
    let start = Instant::now();
    let tag = spec.tag();
    let previous = match status(docker, spec).await? {
        ImageStatus::Current { id } if !force => {
            let size_bytes = image_size(docker, &tag).await;
            return Ok(Built {
                tag,
                id,
                rebuilt: false,
                size_bytes,
                elapsed: start.elapsed(),
                log: None,
                removed: Vec::new(),
            });
        }
        ImageStatus::Current { id } => Some(id),
        ImageStatus::Stale { .. } | ImageStatus::Missing => None,
    };

    progress(Progress::Stage {
        stage: Stage::Preparing,
        elapsed: start.elapsed(),
    });
    let mmdebstrap = find_on_path(MMDEBSTRAP).ok_or_else(|| ImageError::MissingTool {
        command: MMDEBSTRAP.to_owned(),
        package: "mmdebstrap".to_owned(),
    })?;
    if !Path::new(recipe::MERGED_USR_HOOKS).is_dir() {
        return Err(ImageError::MissingTool {
            command: recipe::MERGED_USR_HOOKS.to_owned(),
            package: "mmdebstrap".to_owned(),
        });
    }
    let mirrors = MirrorSet::from_host(&spec.recipe.suite)?;

    let work = tempfile::Builder::new()
        .prefix("stratbox-image-")
        .tempdir()
        .map_err(|source| ImageError::WorkDir {
            path: std::env::temp_dir(),
            source,
        })?;
    let tar_path = work.path().join("rootfs.tar");
    for (name, text) in [
        (recipe::WORK_RUNNER, &spec.runner),
        (recipe::WORK_FINISH, &spec.recipe.finish),
    ] {
        let path = work.path().join(name);
        std::fs::write(&path, text).map_err(|source| ImageError::WorkDir { path, source })?;
    }
    let log_path = log_path(&tag)?;

    progress(Progress::Stage {
        stage: Stage::Bootstrapping,
        elapsed: start.elapsed(),
    });
    let args = spec.recipe.mmdebstrap_command(work.path(), &tar_path);
    bootstrap(&mmdebstrap, &args, &mirrors, &log_path, start, progress).await?;
    let facts_path = work.path().join(recipe::WORK_FACTS);
    let facts = std::fs::read_to_string(&facts_path)
        .map_err(|source| ImageError::WorkDir {
            path: facts_path.clone(),
            source,
        })
        .and_then(|text| {
            ImageFacts::parse(&spec.recipe.suite, &text).ok_or_else(|| ImageError::Facts {
                path: facts_path.clone(),
                text,
            })
        })?;

    progress(Progress::Stage {
        stage: Stage::Importing,
        elapsed: start.elapsed(),
    });
    let id = import(docker, spec, &facts, &tar_path, &tag, start, progress).await?;
    if let Some(old) = previous.filter(|old| *old != id) {
        // The old image lost its tag; it is removed unless a container still uses it.
        let _ = docker
            .remove_image(&old, Some(RemoveImageOptionsBuilder::new().build()), None)
            .await;
    }
    let mut removed = Vec::new();
    let stale_tags = if keep_old {
        Vec::new()
    } else {
        runtime_tags(docker).await?
    };
    for stale in stale_tags {
        if stale == tag {
            continue;
        }
        let options = RemoveImageOptionsBuilder::new().build();
        if docker
            .remove_image(&stale, Some(options), None)
            .await
            .is_ok()
        {
            removed.push(stale);
        }
    }
    let size_bytes = image_size(docker, &tag).await;
    progress(Progress::Stage {
        stage: Stage::Done,
        elapsed: start.elapsed(),
    });
    Ok(Built {
        tag,
        id,
        rebuilt: true,
        size_bytes,
        elapsed: start.elapsed(),
        log: Some(log_path),
        removed,
    })
}

async fn image_size(docker: &Docker, tag: &str) -> Option<u64> {
    let img = docker.inspect_image(tag).await.ok()?;
    img.size.and_then(|s| u64::try_from(s).ok())
}

/// `$XDG_CACHE_HOME/stratbox/image-build-<hash>.log` (or the temp directory).
fn log_path(tag: &str) -> Result<PathBuf, ImageError> {
    let dir = dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("stratbox");
    std::fs::create_dir_all(&dir).map_err(|source| ImageError::WorkDir {
        path: dir.clone(),
        source,
    })?;
    let hash = tag.rsplit(':').next().unwrap_or(tag);
    Ok(dir.join(format!("image-build-{hash}.log")))
}

/// Runs mmdebstrap with the mirror set on stdin, logs everything, reports status lines.
async fn bootstrap(
    program: &Path,
    args: &[String],
    mirrors: &MirrorSet,
    log_path: &Path,
    start: Instant,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImageError> {
    let command = std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut log =
        tokio::fs::File::create(log_path)
            .await
            .map_err(|source| ImageError::WorkDir {
                path: log_path.to_owned(),
                source,
            })?;
    let deb822 = mirrors.to_deb822();
    let header = format!(
        "# {command}\n# sources (stdin), from {}:\n{}\n",
        mirrors
            .files_read
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        deb822
            .lines()
            .map(|l| format!("#   {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let spawn_err = |source| ImageError::Spawn {
        command: command.clone(),
        source,
    };
    log.write_all(header.as_bytes()).await.map_err(spawn_err)?;

    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(deb822.as_bytes())
            .await
            .map_err(spawn_err)?;
        // Dropping stdin closes it: mmdebstrap reads the sources to EOF.
    }
    let mut summary: VecDeque<String> = VecDeque::with_capacity(SUMMARY_LINES);
    if let Some(stderr) = child.stderr.take() {
        let mut lines = tokio::io::BufReader::new(stderr).split(b'\n');
        while let Some(raw) = lines.next_segment().await.map_err(spawn_err)? {
            log.write_all(&raw).await.map_err(spawn_err)?;
            log.write_all(b"\n").await.map_err(spawn_err)?;
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end();
            if let Some(msg) = line.strip_prefix("I: ") {
                progress(Progress::Bootstrap {
                    message: shorten(&summarise(msg)),
                    elapsed: start.elapsed(),
                });
            } else if line.starts_with("E: ") || line.starts_with("W: ") {
                progress(Progress::Bootstrap {
                    message: shorten(line),
                    elapsed: start.elapsed(),
                });
                if summary.len() == SUMMARY_LINES {
                    summary.pop_front();
                }
                summary.push_back(line.to_owned());
            }
        }
    }
    let status = child.wait().await.map_err(spawn_err)?;
    let _ = log.flush().await;
    if status.success() {
        Ok(())
    } else {
        Err(ImageError::Bootstrap {
            command,
            status: status.to_string(),
            log: log_path.to_owned(),
            summary: summary.into_iter().collect::<Vec<_>>().join("\n"),
        })
    }
}

/// Streams the tar to `POST /images/create?fromSrc=-` and returns the new image id.
async fn import(
    docker: &Docker,
    spec: &ImageSpec,
    facts: &ImageFacts,
    tar_path: &Path,
    tag: &str,
    start: Instant,
    progress: &mut dyn FnMut(Progress),
) -> Result<String, ImageError> {
    let import_err = |source| ImageError::Import {
        tar: tar_path.to_owned(),
        tag: tag.to_owned(),
        source,
    };
    let io_err =
        |source: std::io::Error| import_err(bollard::errors::Error::IOError { err: source });
    let file = tokio::fs::File::open(tar_path).await.map_err(io_err)?;
    let total_bytes = file.metadata().await.map_err(io_err)?.len();
    let sent = Arc::new(AtomicU64::new(0));
    let body = {
        let sent = Arc::clone(&sent);
        futures_util::stream::try_unfold(file, move |mut file| {
            let sent = Arc::clone(&sent);
            async move {
                let mut buf = vec![0u8; IMPORT_CHUNK_BYTES];
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                sent.fetch_add(n as u64, Ordering::Relaxed);
                Ok(Some((bytes::Bytes::from(buf), file)))
            }
        })
    };
    let (repo, version) = tag.split_once(':').unwrap_or((tag, "latest"));
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .message(&format!(
            "stratbox runtime image, inputs sha256 {}",
            spec.inputs_sha256()
        ))
        .changes(
            spec.recipe
                .changes
                .iter()
                .cloned()
                .chain(facts.labels().map(|(k, v)| format!("LABEL {k}={v}")))
                .collect(),
        )
        .build();
    let mut responses = std::pin::pin!(docker.create_image(
        Some(options),
        Some(bollard::body_try_stream(body)),
        None
    ));
    let mut tick = tokio::time::interval(IMPORT_PROGRESS_EVERY);
    let mut id = None;
    loop {
        tokio::select! {
            item = responses.next() => match item {
                None => break,
                Some(Err(source)) => return Err(import_err(source)),
                Some(Ok(info)) => {
                    if let Some(s) = info.status.filter(|s| s.starts_with("sha256:")) {
                        id = Some(s);
                    }
                }
            },
            _ = tick.tick() => progress(Progress::Import {
                sent_bytes: sent.load(Ordering::Relaxed),
                total_bytes,
                elapsed: start.elapsed(),
            }),
        }
    }
    progress(Progress::Import {
        sent_bytes: sent.load(Ordering::Relaxed),
        total_bytes,
        elapsed: start.elapsed(),
    });
    match id {
        Some(id) => Ok(id),
        None => docker
            .inspect_image(tag)
            .await
            .map(|i| i.id.unwrap_or_default())
            .map_err(import_err),
    }
}

/// The first executable `name` on `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// mmdebstrap's hook lines name the shell and the chroot path; keep only the command.
fn summarise(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("running --customize-hook in shell: sh -c '") {
        let command = rest
            .rsplit_once("' exec")
            .map_or(rest, |(command, _)| command);
        return format!("customize: {command}");
    }
    if let Some((hook, rest)) = message
        .strip_prefix("running --")
        .and_then(|rest| rest.split_once(" directly: "))
    {
        let script = rest.split_whitespace().next().unwrap_or_default();
        let short = script.rsplit('/').take(2).collect::<Vec<_>>();
        return format!(
            "{hook}: {}",
            short.into_iter().rev().collect::<Vec<_>>().join("/")
        );
    }
    if let Some(rest) = message.strip_prefix("running special hook: ") {
        return format!("customize: {rest}");
    }
    message.to_owned()
}

fn shorten(line: &str) -> String {
    const MAX_CHARS: usize = 100;
    if line.chars().count() <= MAX_CHARS {
        line.to_owned()
    } else {
        let mut s: String = line.chars().take(MAX_CHARS - 1).collect();
        s.push('…');
        s
    }
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./,:+@".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_follows_the_runner_and_nothing_else() {
        let a = ImageSpec::current();
        let mut b = a.clone();
        assert_eq!(a.tag(), b.tag());
        b.runner.push_str("\n# changed\n");
        assert_ne!(a.tag(), b.tag());
        let tag = a.tag();
        let (repo, hash) = tag.split_once(':').expect("repo:tag");
        assert_eq!(repo, "stratbox-runtime");
        assert_eq!(hash.len(), TAG_HEX_DIGITS);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn tag_follows_the_recipe() {
        let a = ImageSpec::current();
        let mut b = a.clone();
        b.recipe.packages.push("python3-scipy".to_owned());
        assert_ne!(a.tag(), b.tag());
        let mut c = a.clone();
        c.recipe.packages.reverse();
        assert_eq!(a.tag(), c.tag(), "package order is not an input");
    }

    #[test]
    fn facts_round_trip_through_labels() {
        let facts = ImageFacts::parse("trixie", "python=3.13.5\nnumpy=2.2.4\npandas=2.2.3+dfsg\n")
            .expect("facts");
        assert_eq!(facts.python_level(), "3.13");
        let labels: std::collections::HashMap<String, String> =
            facts.labels().map(|(k, v)| (k, v.to_owned())).collect();
        assert_eq!(labels["org.stratbox.numpy"], "2.2.4");
        assert_eq!(ImageFacts::from_labels(&labels), Some(facts));
    }

    #[test]
    fn facts_refuse_missing_or_odd_values() {
        assert_eq!(
            ImageFacts::parse("trixie", "python=3.13.5\nnumpy=2.2.4\n"),
            None
        );
        assert_eq!(
            ImageFacts::parse("trixie", "python=3.13 5\nnumpy=2\npandas=2\n"),
            None
        );
        assert_eq!(
            ImageFacts::from_labels(&std::collections::HashMap::new()),
            None
        );
        assert_eq!(python_level("3"), "3");
    }

    #[test]
    fn hook_lines_are_summarised() {
        assert_eq!(
            summarise(
                "running --customize-hook in shell: sh -c 'mkdir -p \"$1/opt\"' exec /tmp/mm.x"
            ),
            "customize: mkdir -p \"$1/opt\""
        );
        assert_eq!(
            summarise(
                "running --setup-hook directly: /usr/share/mmdebstrap/hooks/merged-usr/setup00.sh /tmp/x"
            ),
            "setup-hook: merged-usr/setup00.sh"
        );
        assert_eq!(
            summarise("running apt-get update..."),
            "running apt-get update..."
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--variant=minbase"), "--variant=minbase");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
