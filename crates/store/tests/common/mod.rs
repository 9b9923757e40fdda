//! Runs a test case against a fresh database: a SQLite file in a temp folder, or a
//! PostgreSQL database created for the test on the server `GATEHOUSE_TEST_DATABASE_URL`
//! names and dropped after it, so cases run in parallel without seeing each other.

use std::any::Any;
use std::future::Future;

use gatehouse_store::Store;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use tokio::task::JoinError;

/// The variable naming an admin URL of a PostgreSQL server the tests may create databases on.
pub(crate) const DATABASE_URL_VAR: &str = "GATEHOUSE_TEST_DATABASE_URL";

/// One test's database.
pub(crate) struct TestDb {
    /// The URL of the database, to open more stores on it.
    pub(crate) url: String,
    /// A store connected to it.
    pub(crate) store: Store,
    /// Whether it is PostgreSQL.
    pub(crate) postgres: bool,
    /// Keeps the SQLite file's folder until the case ends.
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Another store on the same database (another "process": its own pool and listener).
    pub(crate) async fn connect_another(&self) -> Store {
        Store::connect(&self.url)
            .await
            .expect("connect a second store")
    }
}

/// Runs `case` on a new SQLite file.
pub(crate) async fn on_sqlite<F, Fut>(case: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
    let store = Store::connect(&url).await.expect("connect to SQLite");
    case(TestDb {
        url,
        store,
        postgres: false,
        _dir: Some(dir),
    })
    .await;
}

/// Runs `case` on a new PostgreSQL database, dropped afterwards even when the case fails.
/// Without a server: skips with a notice, or fails under `CI=true`.
pub(crate) async fn on_postgres<F, Fut>(case: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin_url) = admin_url() else {
        return;
    };
    let name = format!("gh_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {DATABASE_URL_VAR}: {e}"));
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create the test database");
    let mut url = url::Url::parse(&admin_url).expect("admin URL");
    url.set_path(&format!("/{name}"));
    let url = url.to_string();

    let outcome = match Store::connect(&url).await {
        Ok(store) => {
            let db = TestDb {
                url,
                store,
                postgres: true,
                _dir: None,
            };
            // In a task of its own, so a failing case still lets us drop its database.
            tokio::spawn(case(db)).await.map_err(JoinError::into_panic)
        }
        Err(error) => {
            Err(Box::new(format!("connect to the test database: {error}")) as Box<dyn Any + Send>)
        }
    };
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .expect("drop the test database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The admin URL, or `None` (skip) when unset outside CI.
fn admin_url() -> Option<String> {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "{DATABASE_URL_VAR} is not set, and CI=true requires the PostgreSQL tests to run. \
             `bash .ci/run` starts a throwaway server and sets it; by hand: \
             initdb -D /tmp/pg/data -A trust -U postgres && \
             pg_ctl -D /tmp/pg/data -o '-p 5432 -k /tmp/pg -c listen_addresses=127.0.0.1' start, \
             then {DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres"
        ),
        _ => {
            eprintln!(
                "notice: skipping a PostgreSQL store test: set {DATABASE_URL_VAR} to an admin URL \
                 (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run it"
            );
            None
        }
    }
}
