use super::*;

fn config(yaml: &str) -> Configuration {
    Configuration::from_yaml("test", yaml).unwrap()
}

fn cloud() -> Configuration {
    config(
        "apis:\n  - id: users\n    path: users\n    serviceUrl: http://127.0.0.1:9\n  - id: orders\n    path: orders\n    serviceUrl: http://127.0.0.1:9\nproducts:\n  - id: p\n    apis: [users, orders]\nsubscriptions:\n  - id: s-users\n    scope: /apis/users\n    primaryKey: key-users-0001\n  - id: s-product\n    scope: /products/p\n    primaryKey: key-product-0001\n",
    )
}

fn ingress() -> Configuration {
    config(
        "apis:\n  - id: k8s.shop.users.1\n    path: users/\n    serviceUrl: http://users.shop.svc:8080/users\n    subscriptionRequired: false\n",
    )
}

fn ids(config: &Configuration) -> Vec<&str> {
    config.apis.iter().map(|api| api.id.as_str()).collect()
}

/// A layer whose APIs all changed when the layer did.
fn layer(name: &'static str, config: Configuration, changed: u64) -> Layer {
    Layer {
        name,
        api_changed: config
            .apis
            .iter()
            .map(|api| (api.id.clone(), changed))
            .collect(),
        config,
        changed,
    }
}

#[test]
fn the_later_source_wins_a_route_and_takes_what_referred_to_the_replaced_api() {
    // Seed 002: cloud adds /users, then an Ingress adds /users: the Ingress's wins.
    let merged = merge_layers(&[layer("cloud", cloud(), 1), layer("ingress", ingress(), 2)]);
    assert_eq!(ids(&merged), ["orders", "k8s.shop.users.1"]);
    assert_eq!(merged.products[0].apis, ["orders"]);
    let subscriptions: Vec<&str> = merged.subscriptions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        subscriptions,
        ["s-product"],
        "the replaced API's subscription goes"
    );
    merged.validate().unwrap();

    // After a restart the Ingress is read first and the cloud snapshot after it: the
    // cloud's /users wins.
    let merged = merge_layers(&[layer("ingress", ingress(), 1), layer("cloud", cloud(), 2)]);
    assert_eq!(ids(&merged), ["users", "orders"]);
    merged.validate().unwrap();
}

#[test]
fn what_changed_last_wins_not_the_source_that_spoke_last() {
    // The cloud changes /orders after the Ingress took /users: its /users, unchanged
    // since before the Ingress, still loses.
    let mut cloud = layer("cloud", cloud(), 3);
    cloud.api_changed.insert("users".to_owned(), 1);
    let merged = merge_layers(&[layer("ingress", ingress(), 2), cloud]);
    assert_eq!(ids(&merged), ["k8s.shop.users.1", "orders"]);
    merged.validate().unwrap();
}

#[test]
fn routes_on_other_hosts_or_paths_are_kept_side_by_side() {
    let mut other = ingress();
    other.apis[0].hostnames = vec!["api.example.com".to_owned()];
    let merged = merge_layers(&[layer("cloud", cloud(), 1), layer("ingress", other, 2)]);
    assert_eq!(ids(&merged), ["users", "orders", "k8s.shop.users.1"]);
    merged.validate().unwrap();
    assert_eq!(
        merge_layers(&[layer("cloud", cloud(), 1)]),
        cloud(),
        "one layer is itself"
    );
}

#[tokio::test]
async fn sinks_of_one_gateway_merge_their_offers_and_a_refused_offer_changes_nothing() {
    let state = Arc::new(crate::GatewayState::new(
        crate::Metrics::new(),
        crate::AccessLog::disabled(),
    ));
    let layers = Layers::new(&["kubernetes ingress", "control plane"]);
    let ingress_sink = ConfigSink::layer(state.clone(), layers.clone(), "kubernetes ingress");
    let cloud_sink = ConfigSink::layer(state.clone(), layers.clone(), "control plane");
    ingress_sink
        .offer(ingress(), "kubernetes ingress".into(), None)
        .await
        .unwrap();
    assert!(layers.has("kubernetes ingress").await);
    assert!(!layers.has("control plane").await);
    assert_eq!(state.config.load().apis.len(), 1, "served at once");
    assert!(
        !ingress_sink.has_configuration(),
        "not ready before the control plane's"
    );
    cloud_sink
        .offer(cloud(), "control plane revision 7".into(), Some(7))
        .await
        .unwrap();
    assert!(cloud_sink.has_configuration());
    let served = |state: &crate::GatewayState| {
        let mut ids: Vec<String> = state
            .config
            .load()
            .apis
            .iter()
            .map(|api| api.id.to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(served(&state), ["orders", "users"], "the cloud came last");

    // The Ingress offers the same again (another object changed): /users stays the cloud's.
    ingress_sink
        .offer(ingress(), "kubernetes ingress".into(), None)
        .await
        .unwrap();
    assert_eq!(served(&state), ["orders", "users"]);

    // A change of the Ingress route wins it back.
    let mut changed = ingress();
    changed.apis[0].service_url = Some("http://users.shop.svc:8081/users".to_owned());
    ingress_sink
        .offer(changed, "kubernetes ingress".into(), None)
        .await
        .unwrap();
    assert_eq!(served(&state), ["k8s.shop.users.1", "orders"]);

    // A refused offer leaves the layer as it was.
    let mut broken = cloud();
    broken.products[0].apis.push("missing".to_owned());
    cloud_sink
        .offer(broken, "control plane revision 8".into(), Some(8))
        .await
        .unwrap_err();
    assert_eq!(served(&state), ["k8s.shop.users.1", "orders"]);
}
