//! A fresh PostgreSQL database per test, on the server `GATEHOUSE_TEST_DATABASE_URL`
//! names (`.ci/run` starts one), dropped when the test ends.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// The variable naming an admin URL of a PostgreSQL server tests may create databases on.
pub const DATABASE_URL_VAR: &str = "GATEHOUSE_TEST_DATABASE_URL";

/// A database created for one test; dropped (with `FORCE`) on drop.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL, for stores and `--database-url`.
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates a database, or `None` when no server is configured (with a notice on
    /// stderr). Under `CI=true` a missing server fails the test instead: CI must run
    /// every PostgreSQL test.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses, and as said above.
    pub async fn create() -> Option<Self> {
        let admin_url = match std::env::var(DATABASE_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
                "{DATABASE_URL_VAR} is not set, and CI=true requires the PostgreSQL tests to run. \
                 `bash .ci/run` starts a throwaway server and sets it; by hand: \
                 initdb -D /tmp/pg/data -A trust -U postgres && \
                 pg_ctl -D /tmp/pg/data -o '-p 5432 -k /tmp/pg -c listen_addresses=127.0.0.1' start, \
                 then {DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres"
            ),
            _ => {
                eprintln!(
                    "notice: skipping a PostgreSQL test: set {DATABASE_URL_VAR} to an admin URL \
                     (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run it"
                );
                return None;
            }
        };
        let name = format!("gh_test_{:016x}", rand_u64());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {DATABASE_URL_VAR}: {e}"));
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database: {e}"));
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));
        Some(Self {
            url: url.to_string(),
            admin_url,
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Best effort, on a thread of its own (drop may run inside a runtime); a
        // leftover test database is harmless.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                    let _ = conn
                        .execute(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}
