//! Runs a test case against a fresh database: a SQLite file in a temp folder, or a
//! PostgreSQL database created for the test on the server `GATEHOUSE_TEST_DATABASE_URL`
//! names and dropped after it, so cases run in parallel without seeing each other.

use std::any::Any;
use std::future::Future;

use gatehouse_store::Store;
use gatehouse_test_support::postgres::TestDatabase;
use tokio::task::JoinError;

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
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let outcome = match Store::connect(&database.url).await {
        Ok(store) => {
            let db = TestDb {
                url: database.url.clone(),
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
    drop(database);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
