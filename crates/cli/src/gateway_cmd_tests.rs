use super::*;

const TOKEN: &str = "GatewayKey edge&202601020400&AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";

fn source(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Source> {
    let parsed = GatewayArgs::from_args(args.iter().copied())?;
    parsed.source_with_env(|name| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| OsString::from(value))
    })
}

fn settings(source: anyhow::Result<Source>) -> SyncSettings {
    match source.unwrap() {
        Source::ControlPlane(settings) => *settings,
        Source::File(file) => panic!("file mode: {}", file.display()),
        Source::Ingress(_) => panic!("ingress mode"),
        Source::Hybrid(..) => panic!("hybrid mode"),
    }
}

#[test]
fn apims_ingress_settings_select_the_ingress_source() {
    let ingress = |env: &[(&str, &str)]| match source(&[], env).unwrap() {
        Source::Ingress(settings) => settings,
        _ => panic!("not the Ingress source"),
    };
    let scoped = ingress(&[
        ("k8s.ingress.enabled", "true"),
        ("k8s.ingress.namespace", "shop"),
    ]);
    assert_eq!(scoped.namespace.as_deref(), Some("shop"));
    let all = ingress(&[("k8s.ingress.enabled", "TRUE")]);
    assert_eq!(all.namespace, None);
    // `false` (or anything but true) leaves it off.
    assert!(
        source(&[], &[("k8s.ingress.enabled", "false")]).is_err(),
        "no source at all"
    );
}

#[test]
fn ingress_and_control_plane_settings_together_select_hybrid_mode() {
    let both = source(
        &[],
        &[
            ("k8s.ingress.enabled", "true"),
            ("k8s.ingress.namespace", "shop"),
            ("config.service.endpoint", "http://127.0.0.1:8090"),
            ("config.service.auth", TOKEN),
        ],
    );
    match both.unwrap() {
        Source::Hybrid(sync, ingress) => {
            assert_eq!(ingress.namespace.as_deref(), Some("shop"));
            assert_eq!(sync.endpoint.to_string(), "http://127.0.0.1:8090");
        }
        _ => panic!("not hybrid mode"),
    }
    let half = source(
        &[],
        &[
            ("k8s.ingress.enabled", "true"),
            ("config.service.endpoint", "http://127.0.0.1:8090"),
        ],
    );
    let error = format!("{:#}", half.err().unwrap());
    assert!(error.contains("`config.service.auth` is not"), "{error}");
}

#[test]
fn apims_dotted_environment_variables_select_control_plane_mode() {
    let settings = settings(source(
        &[],
        &[
            ("config.service.endpoint", "http://control:8090/"),
            ("config.service.auth", TOKEN),
        ],
    ));
    assert_eq!(settings.endpoint.as_str(), "http://control:8090");
    assert!(matches!(settings.auth, AuthSetting::Token(ref t) if t.gateway_id() == "edge"));
    assert_eq!(settings.backup_dir, Some(PathBuf::from("/apim/config")));
    assert_eq!(settings.heartbeat_interval, Duration::from_secs(60));
}

#[test]
fn flags_override_the_environment_and_a_path_is_a_token_file() {
    let settings = settings(source(
        &[
            "--config-service-endpoint",
            "http://flag:8090",
            "--config-service-auth",
            "/var/run/secrets/token/value",
            "--config-backup-dir",
            "/data/backup",
            "--heartbeat-interval",
            "5s",
        ],
        &[("config.service.endpoint", "http://env:8090")],
    ));
    assert_eq!(settings.endpoint.as_str(), "http://flag:8090");
    assert_eq!(
        settings.auth,
        AuthSetting::File(PathBuf::from("/var/run/secrets/token/value"))
    );
    assert_eq!(settings.backup_dir, Some(PathBuf::from("/data/backup")));
    assert_eq!(settings.heartbeat_interval, Duration::from_secs(5));
}

#[test]
fn a_file_and_a_control_plane_together_are_refused() {
    let error = source(
        &["--config", "gw.yaml"],
        &[
            ("config.service.endpoint", "http://control:8090"),
            ("config.service.auth", TOKEN),
        ],
    )
    .err()
    .unwrap()
    .to_string();
    assert!(error.contains("not both"), "{error}");
}

#[test]
fn half_a_control_plane_setting_is_refused_naming_the_missing_half() {
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("config.service.endpoint", "http://c:8090")],
            "`config.service.auth` is not",
        ),
        (
            &[("config.service.auth", TOKEN)],
            "`config.service.endpoint` is not",
        ),
        (&[], "needs a configuration"),
    ];
    for (env, expected) in cases {
        let error = source(&[], env).err().unwrap().to_string();
        assert!(error.contains(expected), "{env:?}: {error}");
    }
}

#[test]
fn file_mode_is_unchanged() {
    assert!(matches!(
        source(&["--config", "gw.yaml"], &[]).unwrap(),
        Source::File(ref path) if path == std::path::Path::new("gw.yaml")
    ));
}

#[test]
fn a_settings_file_provides_apims_dotted_names_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.yaml");
    std::fs::write(
        &path,
        format!("config.service.endpoint: http://from-file:8090\nconfig.service.auth: \"{TOKEN}\"\ntelemetry.logs.std: true\n"),
    )
    .unwrap();
    let file = read_settings_file(&path).unwrap();
    assert_eq!(
        file["telemetry.logs.std"], "true",
        "scalars are read as text"
    );
    let parsed = GatewayArgs::from_args(["--settings", path.to_str().unwrap()]).unwrap();
    let from_file = parsed
        .source_with_env(|name| file.get(name).map(OsString::from))
        .unwrap();
    assert_eq!(
        settings(Ok(from_file)).endpoint.as_str(),
        "http://from-file:8090"
    );
    let env_wins = parsed
        .source_with_env(|name| {
            (name == "config.service.endpoint")
                .then(|| OsString::from("http://from-env:8090"))
                .or_else(|| file.get(name).map(OsString::from))
        })
        .unwrap();
    assert_eq!(
        settings(Ok(env_wins)).endpoint.as_str(),
        "http://from-env:8090"
    );
    std::fs::write(&path, "config.service.endpoint: [1, 2]\n").unwrap();
    assert!(
        read_settings_file(&path).is_err(),
        "non-scalar values are refused"
    );
}

#[test]
fn per_operation_metrics_are_off_unless_asked_for() {
    let parse = |args: &[&str]| {
        GatewayArgs::from_args(args.iter().copied())
            .unwrap()
            .metrics_per_operation
    };
    assert!(!parse(&[]));
    assert!(parse(&["--metrics-per-operation"]));
    assert!(parse(&["--metrics-per-operation", "true"]));
    assert!(parse(&["--metrics-per-operation=true"]));
    assert!(!parse(&["--metrics-per-operation", "false"]));
}
