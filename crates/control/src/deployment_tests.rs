use serde::Deserialize;

use super::*;

fn documents(manifest: &str) -> Vec<serde_yaml_ng::Value> {
    serde_yaml_ng::Deserializer::from_str(manifest)
        .map(|doc| serde_yaml_ng::Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

#[test]
fn the_manifest_follows_the_production_guidance() {
    let manifest = kubernetes_manifest("edge", "https://control.example.com", IMAGE);
    let docs = documents(&manifest);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget"]
    );

    let config = &docs[0];
    assert_eq!(
        config["data"]["config.service.endpoint"],
        "https://control.example.com"
    );

    let deployment = &docs[1]["spec"];
    assert!(
        deployment["replicas"].as_u64().unwrap() >= 2,
        "production needs at least two replicas"
    );
    assert_eq!(deployment["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &deployment["template"]["spec"];
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["securityContext"]["runAsUser"], 1001);
    let container = &pod["containers"][0];
    let image = container["image"].as_str().unwrap();
    assert!(
        !image.ends_with(":latest") && image.contains(':'),
        "pinned tag: {image}"
    );
    assert_eq!(container["resources"]["requests"]["cpu"], "2");
    assert_eq!(container["resources"]["requests"]["memory"], "2Gi");
    // Ready only with a configuration; alive while waiting for the control plane.
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let spread: Vec<&str> = pod["topologySpreadConstraints"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c["topologyKey"].as_str().unwrap())
        .collect();
    assert_eq!(
        spread,
        ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    );
    let budget = &docs[3]["spec"];
    assert_eq!(budget["minAvailable"], 1);
    assert_eq!(budget["selector"]["matchLabels"]["app"], "edge");
    assert_eq!(container["env"][0]["name"], "config.service.auth");
    assert_eq!(
        container["env"][0]["valueFrom"]["secretKeyRef"]["name"],
        "edge-token"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/apim/config");

    let service = &docs[2]["spec"];
    assert_eq!(service["type"], "LoadBalancer");
    assert_eq!(service["externalTrafficPolicy"], "Local");
    let ports: Vec<(u64, u64)> = service["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["port"].as_u64().unwrap(),
                p["targetPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [(80, 8080), (443, 8081)]);
}

#[test]
fn the_token_goes_into_a_secret_command_not_the_manifest() {
    let token = GatewayToken::sign("edge", b"key", 1_800_000_000).unwrap();
    let command = secret_command("edge", &token);
    assert_eq!(
        command,
        format!(
            "kubectl create secret generic edge-token --type=Opaque --from-literal=value=\"{token}\""
        )
    );
    let manifest = kubernetes_manifest("edge", "http://cp", IMAGE);
    assert!(
        !manifest.contains(token.signature()),
        "secrets stay out of the manifest"
    );
}

#[test]
fn the_checked_in_manifest_is_the_one_the_control_plane_serves() {
    // deploy/kubernetes/gateway-edge.yaml is what `gatehouse gateway deployment-yaml edge`
    // prints for `--public-url https://control.example.com`; `deploy/check.py` (run by
    // .ci/run) renders the Helm chart with the same settings and checks they agree.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/kubernetes/gateway-edge.yaml");
    let manifest = kubernetes_manifest("edge", "https://control.example.com", IMAGE);
    if std::env::var_os("GATEHOUSE_BLESS").is_some() {
        std::fs::write(&path, &manifest).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == manifest,
        "{} is out of date: GATEHOUSE_BLESS=1 cargo test -p gatehouse-control the_checked_in_manifest",
        path.display()
    );
}
