//! The build recipe: what goes into the runtime image and why.
//!
//! Everything here is an input of the image tag (see [`super::ImageSpec::tag`]); the mirror
//! is not, so the same recipe built against two mirrors of the same archive gets the same
//! tag. Changing anything in this file that changes the image must change what
//! [`Recipe::fingerprint`] hashes (the argument templates are hashed verbatim, so most edits
//! do so on their own); bump [`RECIPE_VERSION`] for changes that do not (for example a fix
//! in how the tar is streamed to the engine).

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

/// Version of the recipe as a whole. Part of the tag.
pub const RECIPE_VERSION: u32 = 2;

/// The Debian release the image is built from: trixie (Debian 13) carries CPython 3.13,
/// numpy 2.2 and pandas 2.2, the language level the wasm guest's CPython 3.14 shares with
/// it (the validator parses that one level for both backends).
pub const SUITE: &str = "trixie";

/// The image repository name; the tag is content-derived.
pub const IMAGE_REPO: &str = "stratbox-runtime";

/// Packages installed on top of the `minbase` variant, each with its reason.
pub const PACKAGES: &[(&str, &str)] = &[
    (
        "python3",
        "the interpreter that runs the shared runner and the strategy",
    ),
    (
        "python3-numpy",
        "native-extension workloads the wasm guest cannot carry",
    ),
    (
        "python3-pandas",
        "native-extension workloads the wasm guest cannot carry",
    ),
    (
        "tini",
        "PID 1 inside the container: reaps children and forwards signals; shipped in the \
         image so the run does not depend on the engine having docker-init",
    ),
];

/// The unprivileged user the strategy runs as (uid and gid are equal).
pub const USER_ID: u32 = 10001;
/// Its name in `/etc/passwd`.
pub const USER_NAME: &str = "strategy";

/// Where the shared runner lives inside the image.
pub const RUNNER_DIR: &str = "/opt/stratbox";
/// The runner script inside the image.
pub const RUNNER_PATH: &str = "/opt/stratbox/runner.py";

/// The script of the build's last steps (strip, then record the versions), run by the
/// image's own python3 in the chroot; see its module docs. Its bytes are part of the tag.
pub const FINISH_PY: &str = include_str!("finish.py");

/// Files the build writes into its scratch directory, which the `{work}` placeholder of
/// [`MMDEBSTRAP_ARGS`] names.
pub const WORK_RUNNER: &str = "runner.py";
/// The finishing script, copied into the chroot's `/tmp` and removed after use.
pub const WORK_FINISH: &str = "finish.py";
/// The versions the finished image reports (`key=value` lines), read back by the host.
pub const WORK_FACTS: &str = "facts.txt";

/// The mmdebstrap hook directory that sets up merged `/usr` without installing the
/// `usrmerge` package (which would pull in perl, about 40 MB).
pub const MERGED_USR_HOOKS: &str = "/usr/share/mmdebstrap/hooks/merged-usr";

/// Options passed to mmdebstrap, each with its reason, in the order they run. `{work}` is
/// replaced with the host path of the build's scratch directory (the template, not the
/// path, is hashed).
pub const MMDEBSTRAP_ARGS: &[(&str, &str)] = &[
    ("--variant=minbase", "Essential and required packages only"),
    (
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        "merged /usr without the usrmerge package and the perl it pulls in (about 40 MB)",
    ),
    (
        "--format=tar",
        "a tar stream that the engine imports as an image",
    ),
    (
        "--aptopt=Acquire::Languages \"none\"",
        "no translation indexes",
    ),
    ("--dpkgopt=path-exclude=/usr/share/man/*", "no manual pages"),
    (
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "no documentation",
    ),
    ("--dpkgopt=path-exclude=/usr/share/info/*", "no info pages"),
    (
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "no message catalogues",
    ),
    (
        "--dpkgopt=path-exclude=/usr/share/lintian/*",
        "no packaging metadata",
    ),
    (
        "--customize-hook=find \"$1/usr/lib/python3/dist-packages\" -depth -type d -name tests -exec rm -rf {} +",
        "the numpy and pandas test suites (about 45 MB) are never imported at run time; \
         removed after installation because dpkg path-exclude breaks py3compile",
    ),
    (
        "--customize-hook=chroot \"$1\" groupadd --gid 10001 strategy",
        "the unprivileged group the strategy runs as",
    ),
    (
        "--customize-hook=chroot \"$1\" useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin strategy",
        "the unprivileged user the strategy runs as: no home, no login shell",
    ),
    (
        "--customize-hook=mkdir -p \"$1/opt/stratbox\"",
        "the directory of the shared runner",
    ),
    (
        "--customize-hook=copy-in {work}/runner.py /opt/stratbox",
        "the shared runner, the same file the wasm guest is built from",
    ),
    (
        "--customize-hook=chmod 0755 \"$1/opt/stratbox\" && chmod 0644 \"$1/opt/stratbox/runner.py\"",
        "readable by the strategy user, writable by nobody but root",
    ),
    (
        "--customize-hook=copy-in {work}/finish.py /tmp",
        "the finishing script (src/image/finish.py), run by the image's own python3",
    ),
    (
        "--customize-hook=chroot \"$1\" /usr/bin/python3 -I -B /tmp/finish.py strip",
        "no shells and no programs but python3 and tini: everything else a strategy could \
         execute is removed or loses its execute bit, apt, dpkg and perl go entirely (with \
         the host's mirror configuration), and the build fails if anything else is left \
         executable; runs last among the steps that need programs in the chroot",
    ),
    (
        "--customize-hook=chroot \"$1\" /usr/bin/python3 -I -B /tmp/finish.py facts > \"{work}/facts.txt\"",
        "proves the stripped image still imports numpy, pandas and ctypes, and records the \
         versions the host stores as image labels",
    ),
    (
        "--customize-hook=rm -f \"$1/tmp/finish.py\"",
        "the finishing script is not part of the image",
    ),
    (
        "--skip=cleanup/apt",
        "apt's lists and caches are already gone with apt itself (mmdebstrap's own cleanup \
         would run apt against them)",
    ),
];

/// `docker import --change` instructions applied to the imported root file system.
pub const IMPORT_CHANGES: &[(&str, &str)] = &[
    (
        "USER 10001:10001",
        "never root, even if the backend forgot to say so",
    ),
    (
        "WORKDIR /tmp",
        "the only writable place (a tmpfs at run time)",
    ),
    (
        "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "imported images carry no environment",
    ),
    ("ENV LANG=C.UTF-8", "UTF-8 text without locale files"),
    (
        "ENV PYTHONDONTWRITEBYTECODE=1",
        "the root file system is read-only",
    ),
    (
        "ENTRYPOINT [\"/usr/bin/tini\", \"--\"]",
        "tini is PID 1 and reaps children",
    ),
    (
        "CMD [\"/usr/bin/python3\", \"-I\", \"/opt/stratbox/runner.py\"]",
        "the shared runner, isolated mode (no user site, no environment variables)",
    ),
];

/// The recipe as data, so that it can be hashed and rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Debian suite.
    pub suite: String,
    /// Packages to include.
    pub packages: Vec<String>,
    /// mmdebstrap option templates.
    pub mmdebstrap_args: Vec<String>,
    /// Import changes.
    pub changes: Vec<String>,
    /// The finishing script copied into the chroot (see [`FINISH_PY`]).
    pub finish: String,
}

impl Recipe {
    /// The recipe of this version of stratbox.
    pub fn current() -> Self {
        Self {
            suite: SUITE.to_owned(),
            packages: PACKAGES.iter().map(|(p, _)| (*p).to_owned()).collect(),
            mmdebstrap_args: MMDEBSTRAP_ARGS
                .iter()
                .map(|(a, _)| (*a).to_owned())
                .collect(),
            changes: IMPORT_CHANGES
                .iter()
                .map(|(c, _)| (*c).to_owned())
                .collect(),
            finish: FINISH_PY.to_owned(),
        }
    }

    /// The canonical text hashed into the tag (mirror-independent by construction).
    pub fn fingerprint(&self) -> String {
        let mut packages = self.packages.clone();
        packages.sort();
        let finish_sha =
            Sha256::digest(self.finish.as_bytes())
                .iter()
                .fold(String::new(), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                });
        format!(
            "recipe-version={RECIPE_VERSION}\nsuite={}\npackages={}\nmmdebstrap={}\nchanges={}\n\
             finish-sha256={finish_sha}\n",
            self.suite,
            packages.join(","),
            self.mmdebstrap_args.join("\u{1f}"),
            self.changes.join("\u{1f}"),
        )
    }

    /// The full mmdebstrap command line (after the program name) for a build whose scratch
    /// directory (holding [`WORK_RUNNER`] and [`WORK_FINISH`], receiving [`WORK_FACTS`]) is
    /// `work` and whose output goes to `output`. Mirrors come from stdin (`-`).
    pub fn mmdebstrap_command(
        &self,
        work: &std::path::Path,
        output: &std::path::Path,
    ) -> Vec<String> {
        let mut args = vec![format!("--include={}", self.packages.join(","))];
        for a in &self.mmdebstrap_args {
            args.push(a.replace("{work}", &work.display().to_string()));
        }
        args.push(self.suite.clone());
        args.push(output.display().to_string());
        args.push("-".to_owned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_agrees_with_its_constants() {
        let r = Recipe::current();
        let joined = r.mmdebstrap_args.join("\n");
        assert!(joined.contains(&format!("--hook-dir={MERGED_USR_HOOKS}")));
        assert!(joined.contains(&format!("--uid {USER_ID} --gid {USER_ID}")));
        assert!(joined.contains(&format!("groupadd --gid {USER_ID} {USER_NAME}")));
        assert!(joined.contains(&format!("copy-in {{work}}/{WORK_RUNNER} {RUNNER_DIR}")));
        assert!(joined.contains(&format!("copy-in {{work}}/{WORK_FINISH} /tmp")));
        assert!(joined.contains(&format!("{{work}}/{WORK_FACTS}")));
        assert!(joined.contains(RUNNER_PATH));
        let changes = r.changes.join("\n");
        assert!(changes.contains(&format!("USER {USER_ID}:{USER_ID}")));
        assert!(changes.contains(RUNNER_PATH));
    }

    #[test]
    fn command_substitutes_the_work_path_only() {
        let r = Recipe::current();
        let args = r.mmdebstrap_command(
            std::path::Path::new("/w"),
            std::path::Path::new("/w/rootfs.tar"),
        );
        assert!(
            args.iter()
                .any(|a| a == "--customize-hook=copy-in /w/runner.py /opt/stratbox")
        );
        assert!(args.iter().any(|a| a.ends_with("facts > \"/w/facts.txt\"")));
        assert!(!args.iter().any(|a| a.contains("{work}")));
        assert_eq!(args[args.len() - 3..], ["trixie", "/w/rootfs.tar", "-"]);
        assert!(!r.fingerprint().contains("/w/"));
    }

    #[test]
    fn the_finishing_script_is_part_of_the_fingerprint() {
        let mut r = Recipe::current();
        let before = r.fingerprint();
        r.finish.push('\n');
        assert_ne!(before, r.fingerprint());
    }
}
