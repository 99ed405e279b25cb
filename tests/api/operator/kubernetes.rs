//! The credbridge configurations of the Kubernetes manifests load as a pod loads them, and
//! say what each layout promises. A pod's credbridge sees the image's environment (the
//! Dockerfile's `ENV`) overridden by its container's `env`, and its volumes mounted: the
//! tests run `credbridge check-config` in exactly that environment, over a directory laid
//! out like the container's filesystem, so a variable that overrides the ConfigMap's file
//! is caught. (`tests/run` validates the manifests themselves against the Kubernetes
//! schemas.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::support::TOKEN;
use crate::binary::{credbridge, run};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What the Dockerfile's final stage puts into the image: its `ENV` variables in order,
/// the files it copies from the repository (source, destination), and its `EXPOSE`d port.
struct Image {
    env: Vec<(String, String)>,
    copies: Vec<(PathBuf, String)>,
    exposed: u16,
}

fn image() -> Image {
    let text = std::fs::read_to_string(repository().join("Dockerfile")).unwrap();
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if current.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => current.push_str(start),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|instruction| instruction.starts_with("FROM "))
        .expect("the Dockerfile has a FROM");
    let mut image = Image {
        env: Vec::new(),
        copies: Vec::new(),
        exposed: 0,
    };
    for instruction in &instructions[last_from + 1..] {
        let (command, arguments) = instruction.split_once(' ').unwrap_or((instruction, ""));
        let words: Vec<&str> = arguments.split_whitespace().collect();
        match command {
            "ENV" => {
                assert!(
                    !arguments.contains(['"', '\'']),
                    "quoted ENV: {instruction}"
                );
                for word in words {
                    let (name, value) = word
                        .split_once('=')
                        .unwrap_or_else(|| panic!("ENV without `=`: {instruction}"));
                    image.env.push((name.to_owned(), value.to_owned()));
                }
            }
            "COPY" if !arguments.starts_with("--from") => {
                let [source, destination] = words[..] else {
                    panic!("COPY of one file expected: {instruction}");
                };
                image
                    .copies
                    .push((repository().join(source), destination.to_owned()));
            }
            "EXPOSE" => image.exposed = words[0].parse().unwrap(),
            _ => {}
        }
    }
    assert_ne!(image.exposed, 0, "the Dockerfile exposes a port");
    image
}

/// One deployment of a layout: its main file's objects with one backend file's objects.
struct Deployment {
    files: String,
    objects: Vec<Value>,
}

impl Deployment {
    fn object(&self, kind: &str) -> &Value {
        self.objects
            .iter()
            .find(|object| object["kind"] == kind)
            .unwrap_or_else(|| panic!("{}: no {kind}", self.files))
    }

    fn pod(&self) -> &Value {
        &self.object("Deployment")["spec"]["template"]["spec"]
    }

    fn container(&self, name: &str) -> &Value {
        ["initContainers", "containers"]
            .iter()
            .filter_map(|list| self.pod()[list].as_sequence())
            .flatten()
            .find(|container| container["name"] == name)
            .unwrap_or_else(|| panic!("{}: no container {name}", self.files))
    }

    /// The container's `env`, in order; every credbridge variable is a plain `value`.
    fn env(&self, container: &str) -> Vec<(String, String)> {
        let entries = self.container(container)["env"].as_sequence();
        entries
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let name = entry["name"].as_str().unwrap().to_owned();
                let value = entry["value"].as_str().map(str::to_owned);
                value.map(|value| (name, value))
            })
            .collect()
    }

    /// The `containerPort` of `container`'s port named `name`.
    fn container_port(&self, container: &str, name: &str) -> u64 {
        self.container(container)["ports"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|port| port["name"] == name)
            .and_then(|port| port["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("{}: no port {name} on {container}", self.files))
    }
}

fn objects(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|document| {
            serde::Deserialize::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .collect()
}

/// Every deployment the README describes, by layout: the layout's file with a Deployment,
/// applied with each of the layout's files with a ConfigMap.
fn deployments() -> Vec<(String, Deployment)> {
    let root = repository().join("config/kubernetes");
    let mut found = Vec::new();
    for layout in std::fs::read_dir(&root).unwrap() {
        let layout = layout.unwrap().path();
        let mut files: Vec<(PathBuf, Vec<Value>)> = std::fs::read_dir(&layout)
            .unwrap()
            .map(|file| {
                let path = file.unwrap().path();
                let objects = objects(&path);
                (path, objects)
            })
            .collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let is =
            |objects: &[Value], kind: &str| objects.iter().any(|object| object["kind"] == kind);
        let (main, workload) = files
            .iter()
            .find(|(_, objects)| is(objects, "Deployment"))
            .unwrap_or_else(|| panic!("{}: no Deployment", layout.display()));
        for (backend, configuration) in &files {
            if !is(configuration, "ConfigMap") {
                continue;
            }
            let name = |path: &Path| path.file_name().unwrap().to_string_lossy().into_owned();
            found.push((
                name(&layout),
                Deployment {
                    files: format!("{} + {}", name(main), name(backend)),
                    objects: workload.iter().chain(configuration).cloned().collect(),
                },
            ));
        }
    }
    found.sort_by(|a, b| (&a.0, &a.1.files).cmp(&(&b.0, &b.1.files)));
    found
}

/// Replaces, in one pass, every occurrence of one of `places` (absolute paths inside the
/// container) with the same path under `root`.
fn relocate(text: &str, root: &Path, places: &[String]) -> String {
    let root = root.to_str().unwrap();
    let mut relocated = String::new();
    let mut rest = text;
    'scan: while let Some(next) = rest.chars().next() {
        for place in places {
            if rest.starts_with(place.as_str()) {
                relocated.push_str(root);
                relocated.push_str(place);
                rest = &rest[place.len()..];
                continue 'scan;
            }
        }
        relocated.push(next);
        rest = &rest[next.len_utf8()..];
    }
    relocated
}

/// The configuration in force in the container `container` of `deployment` (with no
/// deployment, in the image as it is run by itself), as `credbridge check-config` prints it
/// there: the image's files and the container's volumes laid out under a directory, the
/// image's `ENV` and then the container's `env` in the environment.
fn configuration_in_force(image: &Image, deployment: Option<(&Deployment, &str)>) -> toml::Value {
    let root = tempfile::tempdir().unwrap();
    let at = |place: &str| root.path().join(place.trim_start_matches('/'));
    let mut places: Vec<String> = image.copies.iter().map(|(_, to)| to.clone()).collect();
    let mut env = image.env.clone();
    let mut files: Vec<(String, String)> = image
        .copies
        .iter()
        .map(|(from, to)| (to.clone(), std::fs::read_to_string(from).unwrap()))
        .collect();
    let mut secrets = Vec::new();
    let mut label = "the image".to_owned();
    if let Some((deployment, container)) = deployment {
        label = format!("{} ({container})", deployment.files);
        env.extend(deployment.env(container));
        let mounts = deployment.container(container)["volumeMounts"].as_sequence();
        for mount in mounts.into_iter().flatten() {
            let path = mount["mountPath"].as_str().unwrap().to_owned();
            let volume = deployment.pod()["volumes"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|volume| volume["name"] == mount["name"])
                .unwrap();
            if let Some(name) = volume["configMap"]["name"].as_str() {
                let map = deployment
                    .objects
                    .iter()
                    .find(|object| {
                        object["kind"] == "ConfigMap" && object["metadata"]["name"] == name
                    })
                    .unwrap_or_else(|| panic!("{label}: no ConfigMap {name}"));
                for (key, text) in map["data"].as_mapping().unwrap() {
                    let (key, text) = (key.as_str().unwrap(), text.as_str().unwrap());
                    files.push((format!("{path}/{key}"), text.to_owned()));
                }
            } else {
                // A Secret's keys are not in the manifests: the files a configuration names
                // under its mount are created below, each holding a token.
                secrets.push(path.clone());
            }
            places.push(path);
        }
    }
    // Longest first, so that of two nested places the deeper one is taken.
    places.sort_by_key(|place| std::cmp::Reverse(place.len()));
    for (place, text) in &files {
        for secret in &secrets {
            for (start, _) in text.match_indices(&format!("{secret}/")) {
                let name: String = text[start..].chars().take_while(|c| *c != '"').collect();
                std::fs::create_dir_all(at(&name).parent().unwrap()).unwrap();
                std::fs::write(at(&name), TOKEN).unwrap();
            }
        }
        std::fs::create_dir_all(at(place).parent().unwrap()).unwrap();
        std::fs::write(at(place), relocate(text, root.path(), &places)).unwrap();
    }
    let mut command = credbridge(root.path());
    for (name, value) in &env {
        command.env(name, relocate(value, root.path(), &places));
    }
    let ran = run(command.arg("check-config"));
    assert!(ran.success(), "{label}: {}", ran.stderr);
    toml::from_str(&ran.stdout).unwrap_or_else(|error| panic!("{label}: {error}"))
}

fn listen(configuration: &toml::Value) -> SocketAddr {
    configuration["listen"].as_str().unwrap().parse().unwrap()
}

fn tls(configuration: &toml::Value) -> bool {
    configuration
        .get("tls")
        .and_then(|tls| tls.get("cert_file"))
        .is_some()
}

#[test]
fn the_image_alone_serves_its_exposed_port_on_every_interface() {
    let image = image();
    // A setting in the image's environment would override that key in every file mounted
    // into the container, silently.
    let settings: Vec<&str> = image
        .env
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| name.starts_with("CREDBRIDGE_") && *name != "CREDBRIDGE_CONFIG")
        .collect();
    assert_eq!(
        settings,
        Vec::<&str>::new(),
        "settings in the Dockerfile's ENV"
    );
    let configuration = configuration_in_force(&image, None);
    assert_eq!(
        listen(&configuration),
        SocketAddr::from(([0, 0, 0, 0], image.exposed))
    );
    assert!(!tls(&configuration));
    assert_eq!(configuration["backend"]["kind"].as_str(), Some("memory"));
}

#[test]
fn every_configuration_in_the_manifests_loads_as_its_pod_loads_it() {
    let image = image();
    let deployments = deployments();
    // Two layouts, each on Vault and on AWS.
    assert_eq!(deployments.len(), 4);
    for (layout, deployment) in &deployments {
        let files = &deployment.files;
        let configuration = configuration_in_force(&image, Some((deployment, "credbridge")));
        let listen = listen(&configuration);
        assert_eq!(
            configuration["auth"]["tokens"].as_array().map(Vec::len),
            Some(1),
            "{files}"
        );
        let kind = if files.ends_with("vault.yaml") {
            "vault"
        } else {
            "aws"
        };
        assert_eq!(
            configuration["backend"]["kind"].as_str(),
            Some(kind),
            "{files}"
        );
        match layout.as_str() {
            "sidecar" => {
                // Plain HTTP is only safe because nothing outside the pod can connect.
                assert!(listen.ip().is_loopback(), "{files}: listens on {listen}");
                assert!(!tls(&configuration), "{files}");
                // Skyvern, in the same pod, calls that very address.
                let skyvern: BTreeMap<String, String> =
                    deployment.env("skyvern").into_iter().collect();
                let base_path = configuration["base_path"].as_str().unwrap();
                assert_eq!(
                    skyvern["CUSTOM_CREDENTIAL_API_BASE_URL"],
                    format!("http://{listen}{base_path}"),
                    "{files}"
                );
            }
            "shared" => {
                // The kubelet's probes and the Service reach the pod's own address, on the
                // port they name, over HTTPS.
                assert!(listen.ip().is_unspecified(), "{files}: listens on {listen}");
                let credbridge = deployment.container("credbridge");
                for probe in ["readinessProbe", "livenessProbe"] {
                    let get = &credbridge[probe]["httpGet"];
                    assert_eq!(get["scheme"].as_str(), Some("HTTPS"), "{files}: {probe}");
                    let port =
                        deployment.container_port("credbridge", get["port"].as_str().unwrap());
                    assert_eq!(u64::from(listen.port()), port, "{files}: {probe}");
                }
                assert!(tls(&configuration), "{files}");
                let service = &deployment.object("Service")["spec"]["ports"][0];
                let target = service["targetPort"].as_str().unwrap();
                let port = deployment.container_port("credbridge", target);
                assert_eq!(
                    u64::from(listen.port()),
                    port,
                    "{files}: the Service's targetPort"
                );
                let policy = &deployment.object("NetworkPolicy")["spec"]["ingress"][0]["ports"][0];
                assert_eq!(
                    policy["port"].as_u64(),
                    Some(u64::from(listen.port())),
                    "{files}: the NetworkPolicy's port"
                );
            }
            other => panic!("an unknown layout: {other}"),
        }
    }
}
