//! The OCI and Docker image formats, as `oci-spec`'s types: indexes,
//! manifests, configs and their media types. What oci-spec does not do
//! lives here beside them: docker's media types (`application/vnd.docker.*`,
//! which oci-spec keeps as `MediaType::Other`), platform matching, the
//! docker-only fields of a config (`Healthcheck`, `Shell`, `OnBuild`), the
//! store's sha256-only digests, and how an image's config turns into a
//! container's process (docker's Entrypoint/Cmd rules).

use serde::{Deserialize, Serialize};

pub use oci_spec::image::{
    Arch, Config, Descriptor, History, ImageConfiguration, ImageIndex, ImageManifest, MediaType,
    Os, Platform, RootFs,
};

use crate::cas::{self, Digest};

pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// What a manifest-ish document turned out to be.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Kind {
    Index,
    Manifest,
}

/// Classify a media type; `None` for one containr does not handle.
pub fn kind_of(media_type: &MediaType) -> Option<Kind> {
    match media_type {
        MediaType::ImageIndex => Some(Kind::Index),
        MediaType::ImageManifest => Some(Kind::Manifest),
        MediaType::Other(s) if s == DOCKER_LIST => Some(Kind::Index),
        MediaType::Other(s) if s == DOCKER_MANIFEST => Some(Kind::Manifest),
        _ => None,
    }
}

/// Layer media types containr can unpack. The compression itself is
/// detected from the bytes, so a mislabelled layer still unpacks.
pub fn is_layer(media_type: &MediaType) -> bool {
    match media_type {
        MediaType::ImageLayer
        | MediaType::ImageLayerGzip
        | MediaType::ImageLayerZstd
        | MediaType::ImageLayerNonDistributableGzip => true,
        MediaType::Other(s) => {
            matches!(
                s.as_str(),
                DOCKER_LAYER | DOCKER_LAYER_GZIP | DOCKER_FOREIGN_LAYER_GZIP
            )
        }
        _ => false,
    }
}

/// A descriptor of a blob in the store.
pub fn descriptor(media_type: MediaType, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(media_type, size, oci_digest(digest))
}

/// An OCI image manifest over `config` and `layers`.
pub fn manifest(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
    oci_spec::image::ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .expect("every required field is set")
}

/// The store's digest in oci-spec's type (always valid: 64 lowercase hex
/// digits of sha256).
pub fn oci_digest(digest: &Digest) -> oci_spec::image::Digest {
    digest
        .to_string()
        .parse()
        .expect("a sha256 digest is a valid OCI digest")
}

/// The blob a descriptor names, as the store keys it: only sha256 is
/// accepted (see [`crate::cas::Digest`]).
pub fn digest_of(d: &Descriptor) -> Result<Digest, cas::Error> {
    d.digest().as_ref().parse()
}

/// A config's layer diff-ids, as the store keys them.
pub fn diff_ids(config: &ImageConfiguration) -> Result<Vec<Digest>, cas::Error> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| d.parse())
        .collect()
}

/// Parse an index, a manifest or a config, refusing digests the store
/// cannot hold (anything but sha256) here rather than at first use.
pub fn parse<T: serde::de::DeserializeOwned + Digests>(bytes: &[u8]) -> serde_json::Result<T> {
    let v: T = serde_json::from_slice(bytes)?;
    v.check_digests()
        .map_err(<serde_json::Error as serde::de::Error>::custom)?;
    Ok(v)
}

/// The digests of a document, checked by [`parse`].
pub trait Digests {
    fn check_digests(&self) -> Result<(), cas::Error>;
}

impl Digests for ImageIndex {
    fn check_digests(&self) -> Result<(), cas::Error> {
        self.manifests()
            .iter()
            .try_for_each(|d| digest_of(d).map(drop))
    }
}

impl Digests for ImageManifest {
    fn check_digests(&self) -> Result<(), cas::Error> {
        digest_of(self.config())?;
        self.layers()
            .iter()
            .try_for_each(|d| digest_of(d).map(drop))
    }
}

impl Digests for ImageConfiguration {
    fn check_digests(&self) -> Result<(), cas::Error> {
        diff_ids(self).map(drop)
    }
}

/// The fields of a docker image config's `config` that the OCI spec (and
/// so oci-spec's [`Config`]) does not have. Read from the same bytes as
/// the [`ImageConfiguration`] (see [`docker_config`]) and written back
/// beside it (see [`config_bytes`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct DockerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
}

/// Docker's `HEALTHCHECK`, as its image config records it (durations in
/// nanoseconds; zero means docker's default).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// An image's defaults for a container: the OCI `config` and the
/// docker-only fields beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub oci: Config,
    pub docker: DockerConfig,
}

/// The docker-only fields of an image config's bytes.
pub fn docker_config(bytes: &[u8]) -> serde_json::Result<DockerConfig> {
    #[derive(Deserialize)]
    struct Outer {
        #[serde(default)]
        config: Option<DockerConfig>,
    }
    let outer: Outer = serde_json::from_slice(bytes)?;
    Ok(outer.config.unwrap_or_default())
}

/// The top-level fields of an image config oci-spec knows, and those of
/// its `config` containr knows (oci-spec's and [`DockerConfig`]'s): what
/// [`config_bytes`] writes from the types; any other field of the base is
/// kept as it was.
const KNOWN_TOP: &[&str] = &[
    "created",
    "author",
    "architecture",
    "os",
    "os.version",
    "os.features",
    "variant",
    "config",
    "rootfs",
    "history",
];
const KNOWN_CONFIG: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
];

/// The bytes of an image config: `image` and `docker` over the fields of
/// `base` (the config it derives from, for `commit`), so that what neither
/// type knows (docker's `container_config`, `docker_version`, ...) is not
/// lost. Keys are sorted, so the same config is the same bytes (and id).
pub fn config_bytes(
    base: Option<&[u8]>,
    image: &ImageConfiguration,
    docker: &DockerConfig,
) -> Vec<u8> {
    use serde_json::{Map, Value};
    let object = |v: Value| match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let base = base
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .map(object)
        .unwrap_or_default();
    let new = object(serde_json::to_value(image).expect("plain data"));
    let mut out = overlay(base.clone(), new.clone(), KNOWN_TOP);
    let base_run = base.get("config").cloned().map(object).unwrap_or_default();
    let mut run = new.get("config").cloned().map(object).unwrap_or_default();
    run.extend(object(serde_json::to_value(docker).expect("plain data")));
    let run = overlay(base_run, run, KNOWN_CONFIG);
    if !run.is_empty() {
        out.insert("config".into(), Value::Object(run));
    }
    serde_json::to_vec(&Value::Object(out)).expect("plain data")
}

/// `base` with each of `known` taken from `new` (or removed when `new`
/// has none).
fn overlay(
    mut base: serde_json::Map<String, serde_json::Value>,
    mut new: serde_json::Map<String, serde_json::Value>,
    known: &[&str],
) -> serde_json::Map<String, serde_json::Value> {
    for key in known {
        match new.remove(*key) {
            Some(v) => base.insert(key.to_string(), v),
            None => base.remove(*key),
        };
    }
    base
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
    platform(
        "linux",
        architecture,
        (architecture == "arm64").then_some("v8"),
    )
}

fn platform(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
    let mut p = Platform::default();
    p.set_os(Os::from(os))
        .set_architecture(Arch::from(architecture))
        .set_variant(variant.map(str::to_string));
    p
}

/// `os/arch[/variant]`, as `--platform` takes it.
pub fn parse_platform(s: &str) -> Option<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    match parts.as_slice() {
        [os, arch] => Some(platform(os, arch, None)),
        [os, arch, variant] => Some(platform(os, arch, Some(variant))),
        _ => None,
    }
}

/// The platform an image's config declares.
pub fn config_platform(c: &ImageConfiguration) -> Platform {
    let mut p = Platform::default();
    p.set_os(c.os().clone())
        .set_architecture(c.architecture().clone())
        .set_variant(c.variant().clone());
    p
}

/// The entry of an index that matches `want`: same os and architecture,
/// and the same variant when `want` names one (arm64's `v8` is the default
/// variant, so an entry without one matches it).
pub fn select_platform<'a>(index: &'a ImageIndex, want: &Platform) -> Option<&'a Descriptor> {
    index
        .manifests()
        .iter()
        .find(|d| d.platform().as_ref().is_some_and(|p| matches(p, want)))
}

/// Whether an image of platform `have` is one of `want` (see
/// [`select_platform`] for the variant's rule).
pub fn matches(have: &Platform, want: &Platform) -> bool {
    have.os() == want.os()
        && have.architecture() == want.architecture()
        && match (want.variant(), have.variant()) {
            (None, _) => true,
            (Some(w), Some(v)) => w == v,
            (Some(w), None) => *want.architecture() == Arch::ARM64 && w == "v8",
        }
}

/// `os/arch[/variant]`.
pub fn platform_string(p: &Platform) -> String {
    match p.variant() {
        Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
        None => format!("{}/{}", p.os(), p.architecture()),
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
    image: &Config,
    entrypoint: Option<&str>,
    args: &[String],
) -> Option<Vec<String>> {
    let (ep, default_cmd) = match entrypoint {
        // `--entrypoint ""` clears the image's entrypoint.
        Some("") => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.to_string()], Vec::new()),
        None => (
            image.entrypoint().clone().unwrap_or_default(),
            image.cmd().clone().unwrap_or_default(),
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

    fn run(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> Config {
        let mut c = Config::default();
        c.set_entrypoint(entrypoint.map(v)).set_cmd(cmd.map(v));
        c
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_docker() {
        let img = run(Some(&["/ep", "-x"]), Some(&["default"]));
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

        let cmd_only = run(None, Some(&["sh"]));
        assert_eq!(process_args(&cmd_only, None, &[]), Some(v(&["sh"])));
        assert_eq!(
            process_args(&cmd_only, None, &v(&["echo", "hi"])),
            Some(v(&["echo", "hi"]))
        );
        assert_eq!(process_args(&Config::default(), None, &[]), None);
    }

    #[test]
    fn media_types() {
        let mt = |s: &str| MediaType::from(s);
        assert_eq!(
            kind_of(&mt("application/vnd.oci.image.index.v1+json")),
            Some(Kind::Index)
        );
        assert_eq!(kind_of(&mt(DOCKER_LIST)), Some(Kind::Index));
        assert_eq!(
            kind_of(&mt("application/vnd.oci.image.manifest.v1+json")),
            Some(Kind::Manifest)
        );
        assert_eq!(kind_of(&mt(DOCKER_MANIFEST)), Some(Kind::Manifest));
        assert_eq!(
            kind_of(&mt(
                "application/vnd.docker.distribution.manifest.v1+prettyjws"
            )),
            None
        );
        assert_eq!(kind_of(&mt("text/html")), None);
        assert!(is_layer(&MediaType::ImageLayerZstd));
        assert!(is_layer(&mt(DOCKER_LAYER_GZIP)) && is_layer(&mt(DOCKER_LAYER)));
        assert!(is_layer(&mt("application/vnd.oci.image.layer.v1.tar")));
        assert!(!is_layer(&MediaType::ImageConfig) && !is_layer(&mt(DOCKER_CONFIG)));
    }

    fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn docker_documents_parse_and_keep_their_media_types() {
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"sha256:{a}","size":7,
                "platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            a = hex('a')
        );
        let idx: ImageIndex = parse(list.as_bytes()).unwrap();
        assert_eq!(
            kind_of(idx.media_type().as_ref().unwrap()),
            Some(Kind::Index)
        );
        assert_eq!(
            kind_of(idx.manifests()[0].media_type()),
            Some(Kind::Manifest)
        );
        assert_eq!(digest_of(&idx.manifests()[0]).unwrap().hex(), hex('a'));
        // Written back, a docker type is the same string.
        let again = serde_json::to_value(&idx).unwrap();
        assert_eq!(again["manifests"][0]["mediaType"], DOCKER_MANIFEST);

        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
              "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"sha256:{a}","size":1}},
              "layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"sha256:{b}","size":2}}]}}"#,
            a = hex('a'),
            b = hex('b')
        );
        let m: ImageManifest = parse(manifest.as_bytes()).unwrap();
        assert!(m.layers().iter().all(|l| is_layer(l.media_type())));

        // The store holds sha256 only: anything else is refused when parsed.
        let sha512 = manifest.replace(
            &format!("sha256:{}", hex('b')),
            &format!("sha512:{}", "b".repeat(128)),
        );
        assert!(parse::<ImageManifest>(sha512.as_bytes()).is_err());
    }

    #[test]
    fn docker_fields_are_read_and_kept() {
        let base = format!(
            r#"{{"architecture":"amd64","os":"linux","docker_version":"24.0.7",
              "container_config":{{"Hostname":"abc"}},
              "config":{{"Cmd":["sh"],"Shell":["/bin/bash","-c"],"OnBuild":["RUN x"],
                "Healthcheck":{{"Test":["CMD-SHELL","true"],"Interval":1000000000,"Retries":3}},
                "ArgsEscaped":true}},
              "rootfs":{{"type":"layers","diff_ids":["sha256:{a}"]}}}}"#,
            a = hex('a')
        );
        let docker = docker_config(base.as_bytes()).unwrap();
        let hc = docker.healthcheck.clone().unwrap();
        assert_eq!(hc.test, Some(v(&["CMD-SHELL", "true"])));
        assert_eq!((hc.interval, hc.retries), (Some(1_000_000_000), Some(3)));
        assert_eq!(docker.shell, Some(v(&["/bin/bash", "-c"])));
        assert_eq!(docker.on_build, Some(v(&["RUN x"])));

        let mut image: ImageConfiguration = parse(base.as_bytes()).unwrap();
        let mut c = image.config().clone().unwrap();
        c.set_cmd(None).set_user(Some("nobody".into()));
        image.set_config(Some(c));
        let written = config_bytes(Some(base.as_bytes()), &image, &docker);
        let w: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(w["docker_version"], "24.0.7");
        assert_eq!(w["container_config"]["Hostname"], "abc");
        assert_eq!(w["config"]["ArgsEscaped"], true);
        assert_eq!(w["config"]["User"], "nobody");
        assert!(
            w["config"].get("Cmd").is_none(),
            "a field set to none is gone"
        );
        assert_eq!(docker_config(&written).unwrap(), docker);
        assert_eq!(
            docker_config(br#"{"config":null}"#).unwrap(),
            DockerConfig::default()
        );
        assert!(docker_config(br#"{"config":{"Healthcheck":"x"}}"#).is_err());
        // The same config is the same bytes.
        assert_eq!(config_bytes(Some(&written), &image, &docker), written);
    }

    #[test]
    fn platforms() {
        let idx: ImageIndex = parse(
            format!(
                r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"sha256:{a}","size":1,"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}},
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"sha256:{b}","size":1,"platform":{{"architecture":"arm64","os":"linux"}}}},
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"sha256:{c}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
                a = hex('a'),
                b = hex('b'),
                c = hex('c')
            )
            .as_bytes(),
        )
        .unwrap();
        let pick = |s: &str| {
            select_platform(&idx, &parse_platform(s).unwrap())
                .map(|d| digest_of(d).unwrap().hex()[..1].to_string())
        };
        assert_eq!(pick("linux/amd64").as_deref(), Some("c"));
        assert_eq!(pick("linux/arm/v7").as_deref(), Some("a"));
        assert_eq!(pick("linux/arm/v6"), None);
        assert_eq!(pick("linux/arm64/v8").as_deref(), Some("b"));
        assert_eq!(pick("windows/amd64"), None);
        assert!(parse_platform("linux").is_none());
        assert!(parse_platform("linux//x").is_none());
        assert_eq!(*host_platform().os(), Os::Linux);
        assert_eq!(
            platform_string(&parse_platform("linux/arm/v7").unwrap()),
            "linux/arm/v7"
        );
    }
}
