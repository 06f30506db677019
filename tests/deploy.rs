//! The files under deploy/ against the code: every environment key is a real
//! setting, secrets come from secret references, probes, ports and grace
//! periods match the server, and every metric the dashboard and the alerts
//! query is one `/metrics` exposes after a scripted run of commands.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use waops::settings::{Settings, SECRET_KEYS};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

fn yaml(path: &str) -> Yaml {
    let mut value: Yaml = serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"));
    value.apply_merge().unwrap();
    value
}

/// Every file under deploy/, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path.strip_prefix(deploy("")).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

/// `KEY=VALUE` lines of an env file.
fn env_file(path: &str) -> BTreeMap<String, String> {
    read(path)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("deploy/{path}: `{l}` is not KEY=VALUE"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// `waops check-config` with exactly `env` (and the config file it names).
fn check_config(env: &BTreeMap<String, String>) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_waops"))
        .arg("check-config")
        .env_clear()
        .envs(env)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Keys that are not waops settings but belong to the deployment.
const DEPLOYMENT_KEYS: [&str; 2] = ["WAOPS_CONFIG", "POSTGRES_PASSWORD"];

fn waops_config() -> String {
    deploy("waops.toml").display().to_string()
}

#[test]
fn every_file_is_checked_here() {
    assert_eq!(
        files(&deploy("")),
        [
            ".env.example",
            "check.sh",
            "compose.yaml",
            "grafana/waops.json",
            "kubernetes/configmap.yaml",
            "kubernetes/deployment.yaml",
            "kubernetes/kustomization.yaml",
            "kubernetes/pdb.yaml",
            "kubernetes/secret.example.yaml",
            "kubernetes/service.yaml",
            "nginx.conf",
            "prometheus/alerts.yaml",
            "waops.toml",
        ],
        "a new file under deploy/ needs its check in this test"
    );
}

#[test]
fn compose_environment_is_settings_check_config_accepts() {
    let compose = yaml("compose.yaml");
    let services = compose["services"].as_mapping().unwrap();
    let mut env = env_file(".env.example");
    let replicas: Vec<&Yaml> = services
        .iter()
        .filter(|(name, _)| name.as_str().unwrap().starts_with("waops-"))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(replicas.len(), 2, "two replicas");
    for service in &replicas {
        assert_eq!(service["env_file"].as_str(), Some(".env"));
        for (k, v) in service["environment"].as_mapping().unwrap() {
            // `${POSTGRES_PASSWORD:?…}` is compose's to fill in.
            let v = v.as_str().unwrap();
            let v = match v.find("${") {
                Some(at) => format!("{}secret{}", &v[..at], &v[v.find('}').unwrap() + 1..]),
                None => v.to_string(),
            };
            env.insert(k.as_str().unwrap().to_string(), v);
        }
        assert_eq!(service["restart"].as_str(), Some("unless-stopped"));
        assert_eq!(
            service["healthcheck"]["test"],
            serde_yaml_ng::from_str::<Yaml>("[CMD, waops, healthcheck]").unwrap()
        );
        assert_eq!(
            service["volumes"][0].as_str(),
            Some("./waops.toml:/etc/waops/waops.toml:ro")
        );
    }
    for key in env.keys() {
        assert!(
            key.starts_with("WAOPS__") || DEPLOYMENT_KEYS.contains(&key.as_str()),
            "{key} is neither a waops setting nor the deployment's"
        );
    }
    // The file the replicas mount, where compose mounts it from.
    env.insert("WAOPS_CONFIG".into(), waops_config());
    let (ok, out) = check_config(&env);
    assert!(ok, "{out}");
    assert!(out.contains("store postgres"), "{out}");
    // The check is real: a misspelt key is refused.
    env.insert("WAOPS__SLACK__SIGNING_SECRT".into(), "x".into());
    let (ok, out) = check_config(&env);
    assert!(!ok && out.contains("slack.signing_secrt: unknown key"), "{out}");

    // Secrets are left empty in the example, and each one is a setting.
    for key in SECRET_KEYS {
        let var = format!("WAOPS__{}", key.replace('.', "__").to_uppercase());
        if let Some(value) = env_file(".env.example").get(&var) {
            assert!(value.is_empty(), "{var} has a value in .env.example");
        }
    }
    for (name, service) in services {
        assert_eq!(service["restart"].as_str(), Some("unless-stopped"), "{name:?}");
        assert!(
            service["healthcheck"].is_mapping() || name == "proxy",
            "{name:?} has no healthcheck"
        );
    }
    let postgres = &services["postgres"];
    assert!(postgres["image"].as_str().unwrap().starts_with("postgres:16"));
    assert!(compose["volumes"]["pgdata"].is_null() || compose["volumes"]["pgdata"].is_mapping());
}

#[test]
fn the_proxy_and_grace_periods_match_the_server() {
    let defaults = Settings::defaults();
    let port = defaults.server.bind.rsplit(':').next().unwrap().to_string();
    let nginx = read("nginx.conf");
    for replica in ["waops-1", "waops-2"] {
        assert!(nginx.contains(&format!("server {replica}:{port} ")), "{nginx}");
    }
    let compose = yaml("compose.yaml");
    assert_eq!(
        compose["services"]["proxy"]["ports"][0].as_str(),
        Some(format!("{port}:{port}").as_str())
    );
    let grace = defaults.server.shutdown_grace.as_secs();
    for replica in ["waops-1", "waops-2"] {
        let stop = compose["services"][replica]["stop_grace_period"].as_str().unwrap();
        let stop: u64 = stop.trim_end_matches('s').parse().unwrap();
        // The grace, then 5 s to tell interrupted commands' users.
        assert!(stop > grace + 5, "stop_grace_period {stop}s, shutdown grace {grace}s");
    }
}

/// The Deployment's containers' env as name → value (or `secret:<key>`).
fn deployment_env(deployment: &Yaml) -> BTreeMap<String, String> {
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match e["value"].as_str() {
                Some(v) => v.to_string(),
                None => {
                    let secret = &e["valueFrom"]["secretKeyRef"];
                    assert_eq!(secret["name"].as_str(), Some("waops"), "{name}");
                    format!("secret:{}", secret["key"].as_str().unwrap())
                }
            };
            (name, value)
        })
        .collect()
}

#[test]
fn kubernetes_manifests_match_the_server() {
    let deployment = yaml("kubernetes/deployment.yaml");
    let spec = &deployment["spec"]["template"]["spec"];
    let container = &spec["containers"][0];
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));

    // Every secret setting comes from the Secret, never a literal.
    let env = deployment_env(&deployment);
    for key in SECRET_KEYS {
        let var = format!("WAOPS__{}", key.replace('.', "__").to_uppercase());
        let value = env.get(&var).unwrap_or_else(|| panic!("{var} is not passed"));
        assert!(value.starts_with("secret:"), "{var} = {value}");
    }
    let secret_example = yaml("kubernetes/secret.example.yaml");
    for value in env.values().filter_map(|v| v.strip_prefix("secret:")) {
        assert!(
            !secret_example["stringData"][value].is_null(),
            "secret.example.yaml lacks {value}"
        );
    }

    // The rest are settings check-config accepts, with the ConfigMap's file.
    let configmap = yaml("kubernetes/configmap.yaml");
    let toml = configmap["data"]["waops.toml"].as_str().unwrap();
    let file = read("waops.toml");
    let body = file.trim_start_matches(|c| c != '[');
    assert_eq!(
        toml, body,
        "the ConfigMap holds deploy/waops.toml (its settings, below its comment)"
    );
    let mut check: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| {
            let v = match v.as_str() {
                "secret:store-url" => "postgres://waops:secret@postgres:5432/waops".to_string(),
                v if v.starts_with("secret:") => "secret".to_string(),
                v => v.to_string(),
            };
            (k.clone(), v)
        })
        .collect();
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"].as_str() == Some("config"))
        .unwrap();
    assert_eq!(
        Path::new(mount["mountPath"].as_str().unwrap())
            .join("waops.toml")
            .display()
            .to_string(),
        check["WAOPS_CONFIG"]
    );
    check.insert("WAOPS_CONFIG".into(), waops_config());
    let (ok, out) = check_config(&check);
    assert!(ok, "{out}");

    // Ports and probes: the bind address's port, /healthz and /readyz.
    let bind = &env["WAOPS__SERVER__BIND"];
    let port: u64 = bind.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(container["ports"][0]["containerPort"].as_u64(), Some(port));
    assert_eq!(container["ports"][0]["name"].as_str(), Some("http"));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/healthz"));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"].as_str(), Some("http"), "{probe}");
    }
    let service = yaml("kubernetes/service.yaml");
    assert_eq!(service["spec"]["ports"][0]["targetPort"].as_str(), Some("http"));

    // Hardening.
    assert_eq!(spec["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    for part in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(container["resources"][part][resource].is_string(), "{part}.{resource}");
        }
    }

    // Termination grace > preStop pause + shutdown grace + 5 s for interrupted replies.
    let grace: u64 = env["WAOPS__SERVER__SHUTDOWN_GRACE_S"].parse().unwrap();
    let pause: u64 = container["lifecycle"]["preStop"]["exec"]["command"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let termination = spec["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        termination > pause + grace + 5,
        "terminationGracePeriodSeconds {termination} <= {pause} + {grace} + 5"
    );

    // Selectors agree; kustomize lists every manifest but the example Secret.
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (name, selector) in [
        ("deployment", &deployment["spec"]["selector"]["matchLabels"]),
        ("service", &service["spec"]["selector"]),
        ("pdb", &yaml("kubernetes/pdb.yaml")["spec"]["selector"]["matchLabels"]),
    ] {
        for (k, v) in selector.as_mapping().unwrap() {
            assert_eq!(&labels[k], v, "{name} selects on {k:?}");
        }
    }
    let kustomization = yaml("kubernetes/kustomization.yaml");
    let resources: Vec<&str> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        ["configmap.yaml", "deployment.yaml", "service.yaml", "pdb.yaml"]
    );
}

/// Metric names (`waops_…`) in PromQL text.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("waops_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

/// Every PromQL expression of the dashboard and the alerts.
fn queries() -> Vec<String> {
    let dashboard: Json = serde_json::from_str(&read("grafana/waops.json")).unwrap();
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    let alerts = yaml("prometheus/alerts.yaml");
    for group in alerts["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            exprs.push(rule["expr"].as_str().unwrap().to_string());
        }
    }
    exprs
}

#[tokio::test]
async fn dashboard_and_alerts_query_metrics_waops_exposes() {
    const SECRET: &str = "deploy-signing-secret";
    let provider = wiremock::MockServer::start().await;
    common::mount_periskope_groups(&provider, "120363041234567890@g.us").await;
    let slack = wiremock::MockServer::start().await;
    let (followed_up, mut follow_ups) = tokio::sync::mpsc::unbounded_channel();
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(move |_: &wiremock::Request| {
            let _ = followed_up.send(());
            wiremock::ResponseTemplate::new(200).set_body_string("ok")
        })
        .mount(&slack)
        .await;
    let config = format!(
        "{}\n[slack]\nsigning_secret = \"{SECRET}\"\nresponse_url_prefixes = [\"{}/\"]\n\
         [permissions.bindings]\nadmin = [\"slack:user:U1\"]\n",
        common::provider_toml("periskope", &format!("{}/v1", provider.uri()), ""),
        slack.uri()
    );
    let app = common::TestApp::with_config(&config).await;
    let (base, _stop) = app.serve().await;
    let http = reqwest::Client::new();

    // The scripted run: signed slash commands (one answered at once, one in a
    // follow-up through the provider), the probes, a digest tick.
    for text in ["help", "groups", "history Sales --limit 1"] {
        let body = common::slack::command_body("U1", "C1", text, &format!("{}/respond", slack.uri()));
        let url = format!("{base}/slack/commands");
        let r = common::slack::signed(&url, SECRET, app.ctx.clock.now().as_second(), body).await;
        let status = r.status();
        assert_eq!(status, 200, "{text}: {}", r.text().await.unwrap());
    }
    // groups and history answer in follow-ups, after their provider calls.
    for _ in 0..2 {
        tokio::time::timeout(std::time::Duration::from_secs(30), follow_ups.recv())
            .await
            .expect("both follow-ups are posted")
            .unwrap();
    }
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(
            http.get(format!("{base}{probe}")).send().await.unwrap().status(),
            200,
            "{probe}"
        );
    }
    app.ctx.audit.flush().await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let exposed = |name: &str| {
        metrics
            .lines()
            .any(|l| !l.starts_with('#') && (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))))
    };
    let mut checked = 0;
    for expr in queries() {
        for name in metric_names(&expr) {
            assert!(exposed(&name), "`{name}` (in `{expr}`) is not in /metrics:\n{metrics}");
            checked += 1;
        }
        // The routes a query selects on are the server's.
        if let Some(at) = expr.find("route=~\"") {
            let routes = &expr[at + 8..];
            for route in routes[..routes.find('"').unwrap()].split('|') {
                assert!(waops_routes().contains(&route), "`{route}` in `{expr}` is not a route");
            }
        }
    }
    assert!(checked >= 15, "{checked}");
    // Provider series carry the account.
    assert!(
        metrics.contains(r#"waops_provider_calls_total{account="default",provider="periskope",outcome="ok"}"#),
        "{metrics}"
    );
}

/// The routes `waops serve` has when Slack and Discord are configured.
fn waops_routes() -> [&'static str; 3] {
    ["/slack/commands", "/slack/interactions", "/discord/interactions"]
}
