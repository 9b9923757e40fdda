use std::time::Duration;

use super::*;

#[tokio::test(start_paused = true)]
async fn a_session_ends_after_its_idle_timeout_and_not_before() {
    let sessions = Sessions::new(Duration::from_secs(60), 10);
    let (id, csrf) = sessions.create().await;
    tokio::time::advance(Duration::from_secs(59)).await;
    let active = sessions.touch(&id).await.expect("used within the timeout");
    assert_eq!(active.csrf, csrf);
    // Each use restarts the idle timeout.
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(sessions.touch(&id).await.is_some());
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(sessions.touch(&id).await.is_none(), "idle for 60 s");
    assert_eq!(sessions.count().await, 0, "an expired session is removed");
}

#[tokio::test(start_paused = true)]
async fn the_map_is_bounded_and_the_least_recently_used_session_makes_room() {
    let sessions = Sessions::new(Duration::from_secs(3600), 2);
    let (first, _) = sessions.create().await;
    tokio::time::advance(Duration::from_secs(1)).await;
    let (second, _) = sessions.create().await;
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(sessions.touch(&first).await.is_some());
    let (third, _) = sessions.create().await;
    assert_eq!(sessions.count().await, 2);
    assert!(
        sessions.touch(&second).await.is_none(),
        "least recently used"
    );
    assert!(sessions.touch(&first).await.is_some());
    assert!(sessions.touch(&third).await.is_some());
}

#[tokio::test]
async fn an_ended_session_and_an_unknown_id_are_not_sessions() {
    let sessions = Sessions::default();
    let (id, _) = sessions.create().await;
    let active = sessions.touch(&id).await.unwrap();
    sessions.end(&active).await;
    assert!(sessions.touch(&id).await.is_none());
    assert!(sessions.touch("not-a-session").await.is_none());
    assert!(sessions.touch("").await.is_none());
}

// Security: the CSRF check refuses an empty or different token.
#[tokio::test]
async fn the_csrf_token_matches_only_itself() {
    let sessions = Sessions::default();
    let (id, csrf) = sessions.create().await;
    let active = sessions.touch(&id).await.unwrap();
    assert!(active.csrf_matches(&csrf));
    assert!(!active.csrf_matches(""));
    assert!(!active.csrf_matches(&format!("{csrf}x")));
    let (_, other) = sessions.create().await;
    assert!(!active.csrf_matches(&other));
    assert_ne!(csrf, other, "each session has its own token");
}

#[tokio::test(start_paused = true)]
async fn peeking_does_not_keep_a_session_alive() {
    let sessions = Sessions::new(Duration::from_secs(60), 10);
    let (id, _) = sessions.create().await;
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(sessions.peek(&id).await.is_some());
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(
        sessions.peek(&id).await.is_none(),
        "60 s since its last use"
    );
}
