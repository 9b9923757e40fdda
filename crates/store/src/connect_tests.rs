use std::path::Path;

use super::*;

fn parse(url: &str) -> Result<Target, StoreError> {
    Target::parse(url, &StoreOptions::default())
}

#[test]
fn sqlite_urls_name_files_or_memory() {
    let cases = [
        (
            "sqlite:///var/lib/gatehouse/gatehouse.db",
            Some("/var/lib/gatehouse/gatehouse.db"),
        ),
        ("sqlite://data/gatehouse.db", Some("data/gatehouse.db")),
        ("sqlite:gatehouse.db", Some("gatehouse.db")),
        ("sqlite::memory:", None),
        ("sqlite://:memory:", None),
    ];
    for (url, want_file) in cases {
        match parse(url) {
            Ok(Target::Sqlite { options, in_memory }) => match want_file {
                Some(file) => {
                    assert!(!in_memory, "{url}");
                    assert_eq!(options.get_filename(), Path::new(file), "{url}");
                }
                None => assert!(in_memory, "{url}"),
            },
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn postgres_urls_keep_host_and_database() {
    for url in [
        "postgres://gatehouse:pw@db.example:5433/gatehouse",
        "postgresql://gatehouse:pw@db.example:5433/gatehouse",
    ] {
        match parse(url) {
            Ok(Target::Postgres(options)) => {
                assert_eq!(options.get_host(), "db.example", "{url}");
                assert_eq!(options.get_port(), 5433, "{url}");
                assert_eq!(options.get_database(), Some("gatehouse"), "{url}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

/// Security: a database URL may carry a password; errors must not echo it.
#[test]
fn invalid_urls_are_rejected_without_echoing_them() {
    for url in [
        "mysql://root:hunter2@localhost/db",
        "hunter2",
        "",
        "postgres://root:hunter2@localhost:notaport/db",
    ] {
        match parse(url) {
            Err(err @ StoreError::InvalidUrl { .. }) => {
                let message = err.to_string();
                assert!(!message.contains("hunter2"), "{url}: {message}");
                assert!(message.contains("sqlite::memory:"), "{url}: {message}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}
