//! The gateway's identity: OAuth2 client-credentials tokens for
//! `authentication-managed-identity` (Azure managed identities do not exist outside
//! Azure; DESIGN.md maps the policy to this).
//!
//! One client (token URL, client id, client secret) per gateway. Tokens are requested
//! with `scope=<resource>/.default` and cached per resource until a minute before they
//! expire (or half their lifetime, when that is shorter). The secret and the tokens
//! never appear in a log line or an error.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gatehouse_policy::{CallError, OutgoingCall};
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method};
use tokio::time::Instant;
use url::Url;

use crate::proxy::calls::PolicyCalls;

/// Resources whose tokens are kept at once; past it, the cache starts afresh.
const MAX_CACHED_TOKENS: usize = 256;
/// Time allowed for a token request.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The client the gateway requests tokens as.
#[derive(Clone)]
pub struct IdentitySettings {
    /// The token endpoint (`https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`).
    pub token_url: Url,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
}

impl fmt::Debug for IdentitySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySettings")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"<secret>")
            .finish()
    }
}

/// Tokens of the gateway's identity, cached per resource.
pub struct IdentityTokens {
    settings: IdentitySettings,
    /// Only `authentication-managed-identity` requests come here, never the plain
    /// request path.
    cache: tokio::sync::Mutex<HashMap<String, CachedToken>>,
}

struct CachedToken {
    token: Arc<str>,
    refresh_at: Instant,
}

impl fmt::Debug for IdentityTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityTokens")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl IdentityTokens {
    /// Tokens for the client `settings` describe.
    #[must_use]
    pub fn new(settings: IdentitySettings) -> Self {
        Self {
            settings,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A token for `resource`: the cached one while it is fresh, else a new one.
    pub(crate) async fn token(
        &self,
        resource: &str,
        calls: &PolicyCalls<'_>,
    ) -> Result<Arc<str>, CallError> {
        if let Some(cached) = self.cache.lock().await.get(resource)
            && Instant::now() < cached.refresh_at
        {
            return Ok(Arc::clone(&cached.token));
        }
        let (token, lifetime) = self.request(resource, calls).await?;
        let refresh_in = lifetime
            .saturating_sub(Duration::from_secs(60))
            .max(lifetime / 2);
        let mut cache = self.cache.lock().await;
        if cache.len() >= MAX_CACHED_TOKENS {
            cache.retain(|_, cached| Instant::now() < cached.refresh_at);
            if cache.len() >= MAX_CACHED_TOKENS {
                cache.clear();
            }
        }
        cache.insert(
            resource.to_owned(),
            CachedToken {
                token: Arc::clone(&token),
                refresh_at: Instant::now() + refresh_in,
            },
        );
        Ok(token)
    }

    /// Asks the token endpoint (client credentials).
    async fn request(
        &self,
        resource: &str,
        calls: &PolicyCalls<'_>,
    ) -> Result<(Arc<str>, Duration), CallError> {
        let scope = if resource.ends_with("/.default") {
            resource.to_owned()
        } else {
            format!("{}/.default", resource.trim_end_matches('/'))
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("client_secret", &self.settings.client_secret)
            .append_pair("scope", &scope)
            .finish();
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let response = calls
            .send(OutgoingCall {
                method: Method::POST,
                url: self.settings.token_url.clone(),
                headers,
                body: Bytes::from(body),
                timeout: TOKEN_TIMEOUT,
            })
            .await?;
        let answer: TokenAnswer = serde_json::from_slice(&response.body).unwrap_or_default();
        if !response.status.is_success() {
            // OAuth2's `error` code only: descriptions may quote the request.
            return Err(CallError::Refused(format!(
                "HTTP {}{}",
                response.status.as_u16(),
                answer
                    .error
                    .map(|code| format!(", {code}"))
                    .unwrap_or_default()
            )));
        }
        let Some(token) = answer.access_token.filter(|token| !token.is_empty()) else {
            return Err(CallError::Refused(
                "the answer has no `access_token`".to_owned(),
            ));
        };
        let lifetime = answer
            .expires_in
            .and_then(|value| match value {
                serde_json::Value::Number(number) => number.as_u64(),
                serde_json::Value::String(text) => text.parse().ok(),
                _ => None,
            })
            .map_or(Duration::from_secs(300), Duration::from_secs);
        Ok((Arc::from(token), lifetime))
    }
}

/// The token endpoint's JSON answer (RFC 6749 §5.1, §5.2); Entra ID writes
/// `expires_in` as a number or a string.
#[derive(Debug, Default, serde::Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
}
