//! Following files that change under a running process: a configuration file, a token
//! mounted from a Kubernetes Secret, a certificate and its key.
//!
//! [`watch_files`] watches the files' **directories**, not the files: an editor's atomic
//! save (write a temporary file, rename it over the old one) and a Kubernetes
//! ConfigMap or Secret update (a new `..2024_…` directory, then the `..data` symlink
//! swapped to it) replace the file rather than write to it, which a watch on the file
//! itself would miss. Events are debounced ([`DEBOUNCE`]), because such updates come in
//! several steps, and coalesced: one pending change is enough to know a reload is due.

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::Watcher as _;
use tokio_util::sync::CancellationToken;

/// Quiet period after a file event before calling back: editors and `kubectl` write in
/// several steps (truncate, write, rename, symlink swap).
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Calls `on_change` after one of `paths` changes (debounced by [`DEBOUNCE`]), until
/// `shutdown` is cancelled.
///
/// # Errors
///
/// If the watcher cannot be created or a directory cannot be watched (it does not
/// exist, or the process may not read it).
pub fn watch_files<F, Fut>(
    paths: &[&Path],
    shutdown: CancellationToken,
    mut on_change: F,
) -> notify::Result<tokio::task::JoinHandle<()>>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    // Bounded: one pending event is enough to know a reload is due.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<()>(1);
    let names: Vec<OsString> = paths
        .iter()
        .filter_map(|path| path.file_name().map(ToOwned::to_owned))
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let relevant = event.paths.is_empty()
            || event.paths.iter().any(|path| {
                path.file_name().is_some_and(|name| {
                    names.iter().any(|watched| watched == name) || is_kubernetes_swap(name)
                })
            });
        if relevant {
            let _ = sender.try_send(());
        }
    })?;
    let mut directories: Vec<PathBuf> = Vec::new();
    for path in paths {
        let directory = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        if !directories.contains(&directory) {
            watcher.watch(&directory, notify::RecursiveMode::NonRecursive)?;
            directories.push(directory);
        }
    }
    Ok(tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                event = receiver.recv() => if event.is_none() { return },
            }
            // Let the writer finish, then drop events that arrived meanwhile.
            tokio::time::sleep(DEBOUNCE).await;
            while receiver.try_recv().is_ok() {}
            on_change().await;
        }
    }))
}

/// Kubernetes updates a mounted volume by writing a `..<timestamp>` directory and
/// swapping the `..data` symlink: the watched file's own name never shows in the event.
fn is_kubernetes_swap(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with("..")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn changes_after(action: impl FnOnce(&Path), watched: &[&str]) -> usize {
        let dir = tempfile::tempdir().unwrap();
        for name in watched {
            std::fs::write(dir.path().join(name), "v1").unwrap();
        }
        let count = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let paths: Vec<PathBuf> = watched.iter().map(|n| dir.path().join(n)).collect();
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let counter = count.clone();
        let task = watch_files(&refs, shutdown.clone(), move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        action(dir.path());
        for _ in 0..40 {
            if count.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Anything still coming would have arrived within another debounce period.
        tokio::time::sleep(DEBOUNCE * 2).await;
        shutdown.cancel();
        task.await.unwrap();
        count.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_write_and_a_rename_over_are_seen_once_each() {
        let seen = changes_after(
            |dir| std::fs::write(dir.join("a.yaml"), "v2").unwrap(),
            &["a.yaml"],
        )
        .await;
        assert_eq!(seen, 1);
        let seen = changes_after(
            |dir| {
                std::fs::write(dir.join(".a.yaml.tmp"), "v2").unwrap();
                std::fs::rename(dir.join(".a.yaml.tmp"), dir.join("a.yaml")).unwrap();
            },
            &["a.yaml"],
        )
        .await;
        assert_eq!(seen, 1, "a burst of events is one change");
    }

    #[tokio::test]
    async fn other_files_in_the_directory_are_ignored() {
        let seen = changes_after(
            |dir| std::fs::write(dir.join("unrelated"), "x").unwrap(),
            &["a.yaml"],
        )
        .await;
        assert_eq!(seen, 0);
    }

    #[tokio::test]
    async fn any_of_several_files_counts_and_a_kubernetes_swap_too() {
        let seen = changes_after(
            |dir| std::fs::write(dir.join("tls.key"), "v2").unwrap(),
            &["tls.crt", "tls.key"],
        )
        .await;
        assert_eq!(seen, 1);
        let seen = changes_after(
            |dir| {
                std::os::unix::fs::symlink(dir.join("..2026_11_23"), dir.join("..data_tmp"))
                    .unwrap()
            },
            &["tls.crt"],
        )
        .await;
        assert_eq!(seen, 1);
    }
}
