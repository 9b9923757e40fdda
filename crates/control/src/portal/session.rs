//! The portal's sessions: a random 256-bit id in an `HttpOnly` cookie, held in memory
//! by this replica only (a restart, or another replica behind a load balancer, asks
//! for the admin token again).
//!
//! Sessions end after an idle timeout (12 hours by default), on sign-out, and when the
//! map is full: then the least recently used one makes room. The map is keyed by the
//! SHA-256 of the id, so a lookup's timing says nothing about the ids it holds, and a
//! memory dump holds no usable id.

use std::collections::HashMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

/// Default idle timeout of a session.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// Default bound on the number of sessions held.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;

/// The sessions of one control-plane replica.
#[derive(Debug)]
pub struct Sessions {
    by_digest: tokio::sync::Mutex<HashMap<[u8; 32], Session>>,
    idle_timeout: Duration,
    max_sessions: usize,
}

/// One signed-in browser.
#[derive(Debug, Clone)]
struct Session {
    /// The token every non-GET request of this session must carry.
    csrf: String,
    /// When it was last used: it ends `idle_timeout` after that.
    last_used: Instant,
}

/// A session a request presented, still valid.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    /// The session's CSRF token (for the pages' forms and htmx header).
    pub csrf: String,
    /// The session id's digest, to end it.
    digest: [u8; 32],
}

impl ActiveSession {
    /// Whether `presented` is this session's CSRF token, in constant time.
    #[must_use]
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

impl Sessions {
    /// No sessions yet; each ends `idle_timeout` after its last use, and at most
    /// `max_sessions` are held (at least one).
    #[must_use]
    pub fn new(idle_timeout: Duration, max_sessions: usize) -> Self {
        Self {
            by_digest: tokio::sync::Mutex::new(HashMap::new()),
            idle_timeout,
            max_sessions: max_sessions.max(1),
        }
    }

    /// Starts a session: returns its id (for the cookie) and its CSRF token. Drops
    /// expired sessions, and the least recently used one when the map is full.
    pub async fn create(&self) -> (String, String) {
        let id = crate::auth::new_secret();
        let csrf = crate::auth::new_secret();
        let now = Instant::now();
        let mut sessions = self.by_digest.lock().await;
        sessions.retain(|_, session| now.duration_since(session.last_used) < self.idle_timeout);
        while sessions.len() >= self.max_sessions {
            let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.last_used)
                .map(|(digest, _)| *digest)
            else {
                break;
            };
            sessions.remove(&oldest);
        }
        sessions.insert(
            digest(&id),
            Session {
                csrf: csrf.clone(),
                last_used: now,
            },
        );
        (id, csrf)
    }

    /// The session `id` names, marked used now; `None` when there is none or it has
    /// expired (then it is removed).
    pub async fn touch(&self, id: &str) -> Option<ActiveSession> {
        self.find(id, true).await
    }

    /// The session `id` names, without marking it used: what a page refreshing itself
    /// (polling) asks, so an open tab alone does not keep a session alive.
    pub async fn peek(&self, id: &str) -> Option<ActiveSession> {
        self.find(id, false).await
    }

    async fn find(&self, id: &str, mark_used: bool) -> Option<ActiveSession> {
        let digest = digest(id);
        let now = Instant::now();
        let mut sessions = self.by_digest.lock().await;
        let session = sessions.get_mut(&digest)?;
        if now.duration_since(session.last_used) >= self.idle_timeout {
            sessions.remove(&digest);
            return None;
        }
        if mark_used {
            session.last_used = now;
        }
        Some(ActiveSession {
            csrf: session.csrf.clone(),
            digest,
        })
    }

    /// Ends a session (sign-out).
    pub async fn end(&self, session: &ActiveSession) {
        self.by_digest.lock().await.remove(&session.digest);
    }

    /// Sessions held now (expired ones included until the next sign-in drops them).
    pub async fn count(&self) -> usize {
        self.by_digest.lock().await.len()
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new(DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_SESSIONS)
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
