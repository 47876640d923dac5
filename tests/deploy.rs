//! The deployment files (Dockerfile, docker-compose.yml, k8s/) checked against the code and
//! against each other. Neither a Docker engine nor a cluster is needed: every driftwood
//! command line and environment in them is run through the real binary with
//! `--check-config`, and the ports, probe paths, grace periods, user and names they share
//! must agree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use driftwood::config::RunConfig;
use driftwood::config::tools::ProduceConfig;
use serde_yaml_ng::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `value[key]` as a string (numbers and booleans spelled as YAML would).
fn text(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("{key}: expected a scalar, got {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("expected a list, got {value:?}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("expected a mapping, got {value:?}"))
        .keys()
        .map(|k| {
            let k = k.as_str().expect("a string key");
            (k.to_string(), text(value, k))
        })
        .collect()
}

/// Runs `driftwood <args> --check-config` with exactly `env` from the repository root,
/// which holds `models/` and `schemas/` as `/app` does in the image. Returns its summary.
fn check_config(args: &[String], env: &BTreeMap<String, String>) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(args)
        .arg("--check-config")
        .env_clear()
        .envs(env)
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "driftwood {args:?} with {env:?} was rejected:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("configuration ok"), "{stdout}");
    stdout
}

fn port_of(addr: &str) -> u16 {
    addr.parse::<std::net::SocketAddr>()
        .unwrap_or_else(|e| panic!("{addr}: {e}"))
        .port()
}

fn seconds(duration: &str) -> u64 {
    humantime::parse_duration(duration)
        .unwrap_or_else(|e| panic!("{duration}: {e}"))
        .as_secs()
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let (instruction, rest) = pending.split_once(' ').unwrap_or((&pending, ""));
        out.push((instruction.to_uppercase(), rest.trim().to_string()));
        pending.clear();
    }
    out
}

fn instruction(file: &[(String, String)], name: &str) -> Vec<String> {
    file.iter()
        .filter(|(i, _)| i == name)
        .map(|(_, rest)| rest.clone())
        .collect()
}

/// The image's `ENV` settings.
fn image_env(file: &[(String, String)]) -> BTreeMap<String, String> {
    instruction(file, "ENV")
        .iter()
        .flat_map(|rest| {
            rest.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn dockerfile_matches_the_code() {
    let file = dockerfile();
    let froms = instruction(&file, "FROM");
    // The build image's Rust is at least the crate's rust-version.
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version in Cargo.toml")
        .trim_matches('"');
    let rust = froms[0]
        .strip_prefix("rust:")
        .and_then(|r| r.split('-').next())
        .expect("the build stage is FROM rust:<version>-…");
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        version(rust) >= version(msrv),
        "rust:{rust} < rust-version {msrv}"
    );
    let build = instruction(&file, "RUN").join(" ");
    assert!(build.contains("cargo build --release --locked"), "{build}");
    assert!(
        repo().join("Cargo.lock").exists(),
        "--locked needs Cargo.lock"
    );

    // The image copies only the binary: the defaults need no model or schema file. Checked
    // from an empty directory, as in the image.
    assert_eq!(instruction(&file, "WORKDIR").last().unwrap(), "/app");
    let copies = instruction(&file, "COPY");
    assert_eq!(
        copies.last().unwrap(),
        "--from=build /usr/local/bin/driftwood /usr/local/bin/driftwood"
    );
    assert!(
        !copies
            .iter()
            .any(|c| c.contains("models") || c.contains("schemas")),
        "{copies:?}"
    );
    let defaults = RunConfig::defaults("unused").unwrap();
    assert_eq!(
        (&defaults.models.model, &defaults.input_schema),
        (&None, &None)
    );
    let empty = tempfile::tempdir().unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(["run", "--check-config"])
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    // The sidecar port is the one exposed; the health check is a real subcommand.
    let env = image_env(&file);
    let port = port_of(&env["DRIFTWOOD_HTTP_ADDR"]);
    assert_eq!(instruction(&file, "EXPOSE"), [port.to_string()]);
    let health = instruction(&file, "HEALTHCHECK").join(" ");
    assert!(
        health.contains(r#"CMD ["driftwood", "healthcheck"]"#),
        "{health}"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_driftwood"))
        .args(["healthcheck", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    assert_eq!(instruction(&file, "USER"), ["10001"]);
    assert_eq!(instruction(&file, "ENTRYPOINT"), [r#"["driftwood"]"#]);
    assert_eq!(instruction(&file, "CMD").last().unwrap(), r#"["run"]"#);

    // The image's own settings are a valid configuration.
    check_config(&["run".into()], &env);

    let ignored = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(
        ignored.lines().any(|l| l == "target"),
        "keep target/ out of the context"
    );
}

#[test]
fn kubernetes_manifests_match_the_code_and_each_other() {
    let dir = repo().join("k8s/base");
    let kustomization = yaml(&dir.join("kustomization.yaml"));
    let mut by_kind = BTreeMap::new();
    for file in strings(&kustomization["resources"]) {
        let doc = yaml(&dir.join(&file));
        by_kind.insert(text(&doc, "kind"), doc);
    }
    let kinds: Vec<&str> = by_kind.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "PrometheusRule",
            "ScaledObject",
            "Service",
            "ServiceMonitor"
        ]
    );
    let config_map = &by_kind["ConfigMap"];
    let settings = string_map(&config_map["data"]);
    let deployment = &by_kind["Deployment"];
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        config_map["metadata"]["name"]
    );

    // The container's command line and environment are a valid configuration.
    let mut env = settings.clone();
    for entry in container["env"].as_sequence().unwrap() {
        let value = match &entry["value"] {
            Value::Null => "pod-0".to_string(), // valueFrom: filled in by Kubernetes
            _ => text(entry, "value"),
        };
        env.insert(text(entry, "name"), value);
    }
    let summary = check_config(&strings(&container["args"]), &env);
    assert!(summary.contains("group driftwood"), "{summary}");

    // Probes hit the sidecar's port and paths.
    let port = port_of(&settings["DRIFTWOOD_HTTP_ADDR"]);
    let ports = &container["ports"][0];
    assert_eq!(ports["containerPort"].as_u64(), Some(u64::from(port)));
    for (probe, path) in [
        ("startupProbe", "/health"),
        ("livenessProbe", "/health"),
        ("readinessProbe", "/ready"),
    ] {
        assert_eq!(
            container[probe]["httpGet"]["path"].as_str(),
            Some(path),
            "{probe}"
        );
        assert_eq!(
            container[probe]["httpGet"]["port"], ports["name"],
            "{probe}"
        );
    }

    // SIGTERM's drain and commit fit in the pod's grace period.
    let grace = seconds(&settings["DRIFTWOOD_SHUTDOWN_GRACE"]);
    let pod_grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(
        pod_grace > grace,
        "terminationGracePeriodSeconds {pod_grace} <= {grace}"
    );

    // The image's user.
    let user = instruction(&dockerfile(), "USER");
    assert_eq!(
        pod["spec"]["securityContext"]["runAsUser"]
            .as_u64()
            .map(|u| u.to_string()),
        user.first().cloned()
    );

    // Selectors find the pods; the Service reaches the sidecar.
    let labels = &pod["metadata"]["labels"];
    for selector in [
        &deployment["spec"]["selector"]["matchLabels"],
        &by_kind["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        &by_kind["Service"]["spec"]["selector"],
    ] {
        for (k, v) in selector.as_mapping().unwrap() {
            assert_eq!(&labels[k.as_str().unwrap()], v, "selector {k:?}");
        }
    }
    assert_eq!(
        by_kind["Service"]["spec"]["ports"][0]["targetPort"],
        ports["name"]
    );

    // Prometheus reaches the sidecar: the ServiceMonitor scrapes the Service's port, and the
    // NetworkPolicy lets only that port in.
    let monitor = &by_kind["ServiceMonitor"];
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        by_kind["Service"]["spec"]["ports"][0]["name"]
    );
    assert_eq!(text(&monitor["spec"]["endpoints"][0], "path"), "/metrics");
    let policy = &by_kind["NetworkPolicy"];
    let allowed = &policy["spec"]["ingress"][0]["ports"];
    assert_eq!(
        allowed.as_sequence().unwrap().len(),
        1,
        "only the sidecar port"
    );
    assert_eq!(allowed[0]["port"].as_u64(), Some(u64::from(port)));
    for (k, v) in policy["spec"]["podSelector"]["matchLabels"]
        .as_mapping()
        .unwrap()
    {
        assert_eq!(
            &labels[k.as_str().unwrap()],
            v,
            "NetworkPolicy selector {k:?}"
        );
    }

    // driftwood may reach the schema registry it is given: its namespace and port.
    let registry = reqwest::Url::parse(&settings["DRIFTWOOD_SCHEMA_REGISTRY_URL"]).unwrap();
    let host = registry.host_str().unwrap();
    let egress = policy["spec"]["egress"].as_sequence().unwrap();
    let reaches = egress.iter().any(|rule| {
        let namespace =
            &rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"];
        let ports = rule["ports"].as_sequence().unwrap();
        namespace
            .as_str()
            .is_some_and(|ns| host.ends_with(&format!(".{ns}.svc")))
            && ports
                .iter()
                .any(|p| p["port"].as_u64() == registry.port().map(u64::from))
    });
    assert!(reaches, "the NetworkPolicy lets driftwood reach {registry}");

    // The PrometheusRule is the rule file compose's Prometheus loads (scripts/k8s-rules.py).
    let rules = yaml(&repo().join("monitoring/prometheus/alerts.yml"));
    assert_eq!(
        by_kind["PrometheusRule"]["spec"]["groups"], rules["groups"],
        "k8s/base/prometheusrule.yaml is stale: run scripts/k8s-rules.py"
    );

    // KEDA watches the lag of this deployment's group on its input topic.
    let scaled = &by_kind["ScaledObject"];
    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(text(trigger, "type"), "kafka");
    let watched = string_map(&trigger["metadata"]);
    for (keda, ours) in [
        ("bootstrapServers", "DRIFTWOOD_BOOTSTRAP_SERVERS"),
        ("consumerGroup", "DRIFTWOOD_GROUP_ID"),
        ("topic", "DRIFTWOOD_INPUT_TOPIC"),
        ("offsetResetPolicy", "DRIFTWOOD_AUTO_OFFSET_RESET"),
    ] {
        assert_eq!(watched[keda], settings[ours], "{keda} vs {ours}");
    }
}

#[test]
fn compose_file_matches_the_code() {
    let compose = yaml(&repo().join("docker-compose.yml"));
    let services = &compose["services"];
    let driftwood = &services["driftwood"];
    let env = string_map(&driftwood["environment"]);

    // driftwood's command and environment, on top of the image's, are a valid configuration.
    let mut image = image_env(&dockerfile());
    image.extend(env.clone());
    check_config(&strings(&driftwood["command"]), &image);
    let port = port_of(&image["DRIFTWOOD_HTTP_ADDR"]);
    assert!(
        strings(&driftwood["ports"]).contains(&format!("{port}:{port}")),
        "publish the sidecar port {port}"
    );
    let grace = seconds(&env["DRIFTWOOD_SHUTDOWN_GRACE"]);
    let stop = seconds(&text(driftwood, "stop_grace_period"));
    assert!(
        stop > grace,
        "stop_grace_period {stop} s <= shutdown grace {grace} s"
    );

    // The broker advertises the address driftwood is given.
    let broker = &env["DRIFTWOOD_BOOTSTRAP_SERVERS"];
    let advertised = text(
        &services["kafka"]["environment"],
        "KAFKA_ADVERTISED_LISTENERS",
    );
    assert!(advertised.contains(&format!("//{broker}")), "{advertised}");
    assert!(driftwood["depends_on"]["kafka"]["condition"] == "service_healthy");

    // The producer is a valid `driftwood produce` writing driftwood's input topic.
    let producer = &services["producer"];
    assert_eq!(producer["image"], driftwood["image"]);
    let command = strings(&producer["command"]);
    assert_eq!(command[0], "produce");
    #[derive(Parser)]
    struct Produce {
        #[command(flatten)]
        config: ProduceConfig,
    }
    let produce = Produce::try_parse_from(
        std::iter::once("driftwood").chain(command[1..].iter().map(String::as_str)),
    )
    .unwrap_or_else(|e| panic!("producer command: {e}"))
    .config;
    assert_eq!(produce.bootstrap_servers.as_ref(), Some(broker));
    assert_eq!(
        produce.topic,
        RunConfig::defaults(broker).unwrap().input_topic
    );
    assert!(producer["depends_on"]["driftwood"]["condition"] == "service_healthy");

    // Both sides talk to the compose registry: the producer registers and frames what
    // driftwood resolves.
    let registry = &env["DRIFTWOOD_SCHEMA_REGISTRY_URL"];
    assert!(
        registry.starts_with("http://schema-registry:8080/"),
        "{registry}"
    );
    assert!(strings(&services["schema-registry"]["ports"]).contains(&"8081:8080".to_string()));
    assert_eq!(produce.schema_registry_url.as_ref(), Some(registry));
    assert_eq!(
        produce.format,
        driftwood::codec::decode::InputFormat::Confluent
    );
    assert_eq!(env["DRIFTWOOD_INPUT_FORMAT"], "confluent");
}

/// The host side of each of `service`'s bind mounts (`./path:/in/container[:ro]`), checked to
/// exist in the repository, with the container side.
fn mounts(service: &Value) -> BTreeMap<String, PathBuf> {
    strings(&service["volumes"])
        .iter()
        .map(|volume| {
            let mut parts = volume.split(':');
            let host = repo().join(parts.next().unwrap());
            assert!(host.exists(), "{volume}: {} does not exist", host.display());
            (parts.next().unwrap().to_string(), host)
        })
        .collect()
}

#[test]
fn compose_monitoring_scrapes_driftwood_and_loads_the_rules_and_the_dashboard() {
    let compose = yaml(&repo().join("docker-compose.yml"));
    let services = &compose["services"];
    let image = image_env(&dockerfile());
    let port = port_of(&image["DRIFTWOOD_HTTP_ADDR"]);

    // Prometheus scrapes the sidecar and loads alerts.yml beside its configuration.
    let prometheus = mounts(&services["prometheus"]);
    let config = yaml(&prometheus["/etc/prometheus/prometheus.yml"]);
    let targets = strings(&config["scrape_configs"][0]["static_configs"][0]["targets"]);
    assert_eq!(targets, [format!("driftwood:{port}")]);
    assert_eq!(strings(&config["rule_files"]), ["alerts.yml"]);
    assert!(prometheus.contains_key("/etc/prometheus/alerts.yml"));

    // Grafana reads that Prometheus, and provisions the dashboard from where it is mounted.
    let grafana = mounts(&services["grafana"]);
    let provisioning = &grafana["/etc/grafana/provisioning"];
    let source = yaml(&provisioning.join("datasources/prometheus.yml"));
    let listen = strings(&services["prometheus"]["command"]).join(" ");
    let prometheus_port = listen.split("--web.listen-address=:").nth(1).unwrap();
    let url = text(&source["datasources"][0], "url");
    assert_eq!(url, format!("http://prometheus:{prometheus_port}"));
    let provider = yaml(&provisioning.join("dashboards/driftwood.yml"));
    let folder = text(&provider["providers"][0]["options"], "path");
    assert!(
        grafana.contains_key(&format!("{folder}/driftwood.json")),
        "{grafana:?}"
    );
}
