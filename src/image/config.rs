//! The OCI and Docker image formats: indexes, manifests, configs, their
//! media types, and how an image's config turns into a container's process
//! (docker's Entrypoint/Cmd rules).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cas::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// What a manifest-ish document turned out to be.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Kind {
    Index,
    Manifest,
}

/// Classify a media type; `None` for one containr does not handle.
pub fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        OCI_INDEX | DOCKER_LIST => Some(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Manifest),
        _ => None,
    }
}

/// Layer media types containr can unpack. The compression itself is
/// detected from the bytes, so a mislabelled layer still unpacks.
pub fn is_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_LAYER
            | OCI_LAYER_GZIP
            | OCI_LAYER_ZSTD
            | DOCKER_LAYER_GZIP
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The parts of an image config containr uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `commit --author`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// The image's defaults for a container's process.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
}

/// The `{}` that `ExposedPorts` and `Volumes` map their keys to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Empty {}

/// One step of an image's history, as docker records it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The host's platform in OCI terms.
pub fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    Platform {
        architecture: architecture.to_string(),
        os: "linux".to_string(),
        variant: (architecture == "arm64").then(|| "v8".to_string()),
    }
}

/// `os/arch[/variant]`, as `--platform` takes it.
pub fn parse_platform(s: &str) -> Option<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    match parts.as_slice() {
        [os, arch] => Some(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }),
        [os, arch, variant] => Some(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: Some(variant.to_string()),
        }),
        _ => None,
    }
}

/// The entry of an index that matches `want`: same os and architecture,
/// and the same variant when `want` names one (arm64's `v8` is the default
/// variant, so an entry without one matches it).
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    index
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(want)))
}

impl Platform {
    /// Whether an image of this platform is one of `want` (see
    /// [`select_platform`] for the variant's rule).
    pub fn matches(&self, want: &Platform) -> bool {
        self.os == want.os
            && self.architecture == want.architecture
            && match (&want.variant, &self.variant) {
                (None, _) => true,
                (Some(w), Some(v)) => w == v,
                (Some(w), None) => want.architecture == "arm64" && w == "v8",
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// Docker's rules for the process of a container from an image:
///
/// - `--entrypoint` replaces the image's Entrypoint *and* drops its Cmd;
/// - arguments on the command line replace the image's Cmd;
/// - the process is Entrypoint followed by Cmd.
///
/// `None` when that leaves nothing to run.
pub fn process_args(
    image: &RunConfig,
    entrypoint: Option<&str>,
    args: &[String],
) -> Option<Vec<String>> {
    let (ep, default_cmd) = match entrypoint {
        // `--entrypoint ""` clears the image's entrypoint.
        Some("") => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.to_string()], Vec::new()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            image.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = if args.is_empty() {
        default_cmd
    } else {
        args.to_vec()
    };
    let all: Vec<String> = ep.into_iter().chain(cmd).collect();
    (!all.is_empty()).then_some(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_docker() {
        let img = RunConfig {
            entrypoint: Some(v(&["/ep", "-x"])),
            cmd: Some(v(&["default"])),
            ..Default::default()
        };
        assert_eq!(
            process_args(&img, None, &[]),
            Some(v(&["/ep", "-x", "default"]))
        );
        assert_eq!(
            process_args(&img, None, &v(&["mine", "1"])),
            Some(v(&["/ep", "-x", "mine", "1"]))
        );
        assert_eq!(process_args(&img, Some("/sh"), &[]), Some(v(&["/sh"])));
        assert_eq!(
            process_args(&img, Some("/sh"), &v(&["-c", "x"])),
            Some(v(&["/sh", "-c", "x"]))
        );
        assert_eq!(process_args(&img, Some(""), &v(&["ls"])), Some(v(&["ls"])));
        assert_eq!(process_args(&img, Some(""), &[]), None);

        let cmd_only = RunConfig {
            cmd: Some(v(&["sh"])),
            ..Default::default()
        };
        assert_eq!(process_args(&cmd_only, None, &[]), Some(v(&["sh"])));
        assert_eq!(
            process_args(&cmd_only, None, &v(&["echo", "hi"])),
            Some(v(&["echo", "hi"]))
        );
        assert_eq!(process_args(&RunConfig::default(), None, &[]), None);
    }

    #[test]
    fn media_types() {
        assert_eq!(kind_of(OCI_INDEX), Some(Kind::Index));
        assert_eq!(kind_of(DOCKER_LIST), Some(Kind::Index));
        assert_eq!(kind_of(OCI_MANIFEST), Some(Kind::Manifest));
        assert_eq!(kind_of(DOCKER_MANIFEST), Some(Kind::Manifest));
        assert_eq!(
            kind_of("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            None
        );
        assert_eq!(kind_of("text/html"), None);
        assert!(is_layer(OCI_LAYER_ZSTD) && is_layer(DOCKER_LAYER_GZIP) && is_layer(OCI_LAYER));
        assert!(!is_layer(OCI_CONFIG));
    }

    #[test]
    fn platforms() {
        let idx: Index = serde_json::from_str(&format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"digest":"sha256:{a}","size":1,"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}},
              {{"digest":"sha256:{b}","size":1,"platform":{{"architecture":"arm64","os":"linux"}}}},
              {{"digest":"sha256:{c}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            a = "a".repeat(64),
            b = "b".repeat(64),
            c = "c".repeat(64)
        ))
        .unwrap();
        let pick = |s: &str| {
            select_platform(&idx, &parse_platform(s).unwrap())
                .map(|d| d.digest.hex()[..1].to_string())
        };
        assert_eq!(pick("linux/amd64").as_deref(), Some("c"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("a"));
        assert_eq!(pick("linux/arm/v6"), None);
        assert_eq!(pick("linux/arm64/v8").as_deref(), Some("b"));
        assert_eq!(pick("windows/amd64"), None);
        assert!(parse_platform("linux").is_none());
        assert!(parse_platform("linux//x").is_none());
        assert_eq!(host_platform().os, "linux");
    }
}
