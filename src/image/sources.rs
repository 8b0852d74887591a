//! The host's APT sources, read to learn which Debian mirror to bootstrap from.
//!
//! The image is built from the same archive the host is configured to use, so no host name
//! is written into the code. Both formats APT reads are understood: deb822 `*.sources`
//! files and one-line `*.list` files (plus `/etc/apt/sources.list`). Only files APT itself
//! would read are considered (`*.sources`, `*.list`), so a file renamed to
//! `foo.list.disabled` is ignored, as is a deb822 stanza with `Enabled: no`.
//!
//! The host's suites are mapped onto the image's suite by their suffix: on a trixie host
//! building the (trixie) image nothing changes; on a bookworm host `bookworm`,
//! `bookworm-updates` and `bookworm-security` become `trixie`, `trixie-updates` and
//! `trixie-security` on the same mirrors, checked with the same keyring (the host's
//! `debian-archive-keyring` must carry trixie's keys). Third-party repositories (whose
//! suites are not the host's release) are left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::ImageError;

/// Where APT's configuration lives on the host.
pub const APT_SOURCES_LIST: &str = "/etc/apt/sources.list";
/// The directory of additional source files.
pub const APT_SOURCES_DIR: &str = "/etc/apt/sources.list.d";
/// The file that names the host's release.
pub const OS_RELEASE: &str = "/etc/os-release";

/// Suite suffixes carried into the image; anything else (backports, proposed-updates) is
/// not part of a stable, reproducible base.
const SUITE_SUFFIXES: [&str; 3] = ["", "-updates", "-security"];

/// One `deb` source, as APT would use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Mirror URIs (`http://…/debian`).
    pub uris: Vec<String>,
    /// Suites (`bookworm`, `bookworm-updates`).
    pub suites: Vec<String>,
    /// Components (`main`).
    pub components: Vec<String>,
    /// The `Signed-By` keyring or inline key, if given.
    pub signed_by: Option<String>,
    /// The file the entry came from (for error messages).
    pub file: PathBuf,
}

/// The mirrors chosen for the image, rendered as a deb822 document for mmdebstrap's stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSet {
    /// The entries, already mapped to the image's suite.
    pub sources: Vec<Source>,
    /// The files that were read (for error messages and the build log).
    pub files_read: Vec<PathBuf>,
}

impl MirrorSet {
    /// Reads the host configuration from the standard paths and keeps the entries that
    /// serve `suite` (see the module docs for the mapping).
    pub fn from_host(suite: &str) -> Result<Self, ImageError> {
        let host_codename = read_host_codename(Path::new(OS_RELEASE))?;
        let mut files = Vec::new();
        let list = PathBuf::from(APT_SOURCES_LIST);
        if list.is_file() {
            files.push(list);
        }
        match std::fs::read_dir(APT_SOURCES_DIR) {
            Ok(entries) => {
                let mut extra: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.is_file()
                            && matches!(
                                p.extension().and_then(|e| e.to_str()),
                                Some("list" | "sources")
                            )
                    })
                    .collect();
                // APT reads the directory in lexical order; so do we.
                extra.sort();
                files.extend(extra);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ImageError::ReadSources {
                    path: PathBuf::from(APT_SOURCES_DIR),
                    source,
                });
            }
        }
        let mut all = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|source| ImageError::ReadSources {
                path: file.clone(),
                source,
            })?;
            all.extend(parse_file(file, &text));
        }
        Self::select(all, files, &host_codename, suite)
    }

    /// Keeps the `main` entries whose suites belong to the host's release (or already to
    /// `suite`) and maps them onto `suite`.
    pub fn select(
        all: Vec<Source>,
        files_read: Vec<PathBuf>,
        host_codename: &str,
        suite: &str,
    ) -> Result<Self, ImageError> {
        let mut sources = Vec::new();
        for mut src in all {
            if !src.components.iter().any(|c| c == "main") {
                continue;
            }
            let mut suites = Vec::new();
            for s in &src.suites {
                let Some(suffix) = [suite, host_codename]
                    .iter()
                    .filter(|base| !base.is_empty())
                    .find_map(|base| s.strip_prefix(base))
                else {
                    continue;
                };
                if SUITE_SUFFIXES.contains(&suffix) {
                    let mapped = format!("{suite}{suffix}");
                    if !suites.contains(&mapped) {
                        suites.push(mapped);
                    }
                }
            }
            if suites.is_empty() {
                continue;
            }
            src.suites = suites;
            src.components = vec!["main".to_owned()];
            sources.push(src);
        }
        if !sources.iter().any(|s| s.suites.iter().any(|x| x == suite)) {
            return Err(ImageError::NoMirror {
                suite: suite.to_owned(),
                files: files_read,
            });
        }
        Ok(Self {
            sources,
            files_read,
        })
    }

    /// The deb822 text handed to mmdebstrap (which pastes it into the chroot's
    /// `sources.list` and uses it for the bootstrap).
    pub fn to_deb822(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.sources.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            // Writing to a String cannot fail.
            let _ = writeln!(out, "Types: deb");
            let _ = writeln!(out, "URIs: {}", s.uris.join(" "));
            let _ = writeln!(out, "Suites: {}", s.suites.join(" "));
            let _ = writeln!(out, "Components: {}", s.components.join(" "));
            if let Some(key) = &s.signed_by {
                // An inline key spans lines; deb822 continuation lines start with a space
                // and an empty line is written as " .".
                if !key.contains('\n') {
                    let _ = writeln!(out, "Signed-By: {key}");
                    continue;
                }
                let _ = writeln!(out, "Signed-By:");
                for line in key.lines() {
                    if line.trim().is_empty() {
                        let _ = writeln!(out, " .");
                    } else {
                        let _ = writeln!(out, " {line}");
                    }
                }
            }
        }
        out
    }
}

/// Reads `VERSION_CODENAME` from os-release; an empty string if the file or key is absent
/// (a host without it can still build when its sources name the image's suite directly).
fn read_host_codename(path: &Path) -> Result<String, ImageError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .unwrap_or_default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(ImageError::ReadSources {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses one file in the format its extension says (`.sources` = deb822, else one-line).
pub fn parse_file(path: &Path, text: &str) -> Vec<Source> {
    if path.extension().and_then(|e| e.to_str()) == Some("sources") {
        parse_deb822(path, text)
    } else {
        parse_one_line(path, text)
    }
}

/// Parses deb822 stanzas, keeping enabled `deb` entries.
pub fn parse_deb822(path: &Path, text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    // Fields of the stanza being read: (lower-case name, value with continuation lines).
    let mut fields: Vec<(String, String)> = Vec::new();
    let flush = |fields: &mut Vec<(String, String)>, out: &mut Vec<Source>| {
        if fields.is_empty() {
            return;
        }
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let words = |name: &str| -> Vec<String> {
            get(name)
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let enabled = get("enabled").is_none_or(|v| !v.trim().eq_ignore_ascii_case("no"));
        let types = words("types");
        if enabled && types.iter().any(|t| t == "deb") {
            out.push(Source {
                uris: words("uris"),
                suites: words("suites"),
                components: words("components"),
                signed_by: get("signed-by").map(|v| v.trim().to_owned()),
                file: path.to_owned(),
            });
        }
        fields.clear();
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut fields, &mut out);
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                let cont = line.trim();
                value.push('\n');
                if cont != "." {
                    value.push_str(cont);
                }
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    flush(&mut fields, &mut out);
    out
}

/// Parses one-line `deb [options] uri suite component...` entries.
pub fn parse_one_line(path: &Path, text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(after) = rest.strip_prefix('[') {
            let Some((opts, tail)) = after.split_once(']') else {
                continue;
            };
            for opt in opts.split_whitespace() {
                if let Some(v) = opt.strip_prefix("signed-by=") {
                    signed_by = Some(v.to_owned());
                }
            }
            rest = tail.trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(Source {
            uris: vec![uri.to_owned()],
            suites: vec![suite.to_owned()],
            components: words.map(str::to_owned).collect(),
            signed_by,
            file: path.to_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "\
Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://third-party.example/repo
Suites: nodistro
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
";

    #[test]
    fn deb822_keeps_enabled_deb_entries() {
        let got = parse_deb822(Path::new("x.sources"), DEB822);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].uris, ["http://mirror.example/debian"]);
        assert_eq!(got[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            got[0].signed_by.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
    }

    #[test]
    fn one_line_with_options() {
        let text = "# c\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n\
                    deb-src http://m.example/debian bookworm main\n\
                    deb http://m.example/debian-security bookworm-security main # trailing\n";
        let got = parse_one_line(Path::new("x.list"), text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(got[1].suites, ["bookworm-security"]);
        assert_eq!(got[1].components, ["main"]);
    }

    #[test]
    fn select_drops_third_party_and_maps_suites() {
        let all = parse_deb822(
            Path::new("x.sources"),
            &DEB822.replace("bookworm", "trixie"),
        );
        let set = MirrorSet::select(all, vec![], "trixie", "bookworm").expect("mirror found");
        assert_eq!(set.sources.len(), 2);
        assert_eq!(set.sources[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(set.sources[0].components, ["main"]);
        assert_eq!(set.sources[1].suites, ["bookworm-security"]);
        let text = set.to_deb822();
        assert!(text.contains("URIs: http://mirror.example/debian\n"));
        assert!(!text.contains("third-party"));
    }

    #[test]
    fn select_without_base_suite_names_the_files() {
        let all = parse_deb822(
            Path::new("x.sources"),
            "Types: deb\nURIs: http://x\nSuites: nodistro\nComponents: main\n",
        );
        let err = MirrorSet::select(
            all,
            vec![PathBuf::from("x.sources")],
            "bookworm",
            "bookworm",
        )
        .expect_err("no mirror");
        assert!(err.to_string().contains("x.sources"), "{err}");
    }

    #[test]
    fn inline_key_round_trips() {
        let text = "Types: deb\nURIs: http://x/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n";
        let all = parse_deb822(Path::new("x.sources"), text);
        let set = MirrorSet::select(all, vec![], "bookworm", "bookworm").expect("mirror");
        let out = set.to_deb822();
        assert!(out.contains("Signed-By:\n -----BEGIN"), "{out}");
        assert!(out.contains("\n .\n abc\n"), "{out}");
    }
}
