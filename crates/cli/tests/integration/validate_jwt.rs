//! `validate-jwt` end to end: the gateway fetches an OpenID configuration and its keys
//! from an identity provider on 127.0.0.1, verifies tokens with them, and refuses the
//! others through on-error.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::common::*;

/// A test-only RSA key (`openssl genrsa 2048`) and its modulus (base64url).
const RSA_PEM: &str = include_str!("../../../policy/src/policies/validate_jwt_test_key.pem");
const RSA_N: &str = "wEaq_QFETONE-vm_tbDu7r4FgsxLZw7s5Z0iswihiM5spJpYrbVY_nqbcxtQ-SQT4kHIvKHvpM10ZP0DsP8nItf5lgOhd_TWVT-_g9BBhqlxzTL_Ti8QlQz2AULHGfyA8io7L3Chw9RoGOfsK9JnnIAMP-K8mnwhBygl0VlyvwYiSrm3Q_RQ-MHeVLw6FYrHVSTzUo4UGWiCQzOsKnUQu6BaozBJPjkfT4JBTogp1INZGy_JXRfHcNzfnAjPb-a0FiwtErbQqUButNuWEh2JJ14lhRyt9BSbg6Y1qPPH6jt380vHe4AToAMtzpJOEeBo8sxKDL8xab5zelsSbKkZ7Q";

const ISSUER: &str = "https://issuer.test/";

/// An identity provider on 127.0.0.1: its discovery document and key set, each
/// request counted by path.
struct IdentityProvider {
    addr: SocketAddr,
    discovery: Arc<AtomicUsize>,
    jwks: Arc<AtomicUsize>,
}

impl IdentityProvider {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (discovery, jwks) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (discovery_count, jwks_count) = (Arc::clone(&discovery), Arc::clone(&jwks));
        let config =
            json!({"issuer": ISSUER, "jwks_uri": format!("http://{addr}/keys")}).to_string();
        let keys = json!({"keys": [
            {"kty": "RSA", "use": "sig", "kid": "k1", "alg": "RS256", "n": RSA_N, "e": "AQAB"},
        ]})
        .to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or_default();
                let (status, body) = match path {
                    "/.well-known/openid-configuration" => {
                        discovery_count.fetch_add(1, Ordering::SeqCst);
                        ("200 OK", config.as_str())
                    }
                    "/keys" => {
                        jwks_count.fetch_add(1, Ordering::SeqCst);
                        ("200 OK", keys.as_str())
                    }
                    _ => ("404 Not Found", "{}"),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            addr,
            discovery,
            jwks,
        }
    }

    fn calls(&self) -> (usize, usize) {
        (
            self.discovery.load(Ordering::SeqCst),
            self.jwks.load(Ordering::SeqCst),
        )
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rsa_key() -> EncodingKey {
    let body: String = RSA_PEM
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    EncodingKey::from_rsa_der(
        &base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap(),
    )
}

fn token(alg: Algorithm, key: &EncodingKey, claims: &serde_json::Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some("k1".to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// `token` with one character of its signature changed.
fn tampered(token: &str) -> String {
    let at = token.len() - 10;
    let changed = if &token[at..=at] == "A" { "B" } else { "A" };
    format!("{}{changed}{}", &token[..at], &token[at + 1..])
}

#[tokio::test]
async fn validate_jwt_accepts_a_signed_token_and_refuses_others() {
    let backend = EchoBackend::start();
    let provider = IdentityProvider::start();
    let policy = format!(
        r#"<policies>
  <inbound>
    <base />
    <validate-jwt header-name="Authorization" require-scheme="Bearer" output-token-variable-name="jwt">
      <openid-config url="http://{}/.well-known/openid-configuration" />
      <audiences><audience>api://orders</audience></audiences>
      <required-claims><claim name="roles" match="any"><value>reader</value></claim></required-claims>
    </validate-jwt>
    <set-header name="X-Subject" exists-action="override"><value>@(((Jwt)context.Variables["jwt"]).Subject)</value></set-header>
  </inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
  <on-error>
    <base />
    <set-header name="X-Error" exists-action="override"><value>@(context.LastError.Source + "/" + context.LastError.Reason)</value></set-header>
  </on-error>
</policies>"#,
        provider.addr
    );
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, Some(&policy)));
    let key = rsa_key();
    let claims = |changes: serde_json::Value| {
        let mut claims = json!({
            "sub": "ada",
            "aud": "api://orders",
            "iss": ISSUER,
            "exp": now() + 600,
            "roles": ["reader"],
        });
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let call = |authorization: Option<String>| {
        let mut request = http_client()
            .get(gateway.url("/api/orders"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY);
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        request.send()
    };

    // A valid token: forwarded, its subject read from the kept Jwt.
    let valid = token(Algorithm::RS256, &key, &claims(json!({})));
    let response = call(Some(format!("Bearer {valid}"))).await.unwrap();
    let landed = echo(response).await;
    assert_eq!(landed.header("x-subject"), Some("ada"));

    // Refused: on-error runs with validate-jwt's reason; APIM's body.
    let hmac = EncodingKey::from_secret(b"an HMAC secret that is not the key");
    let refused = [
        (None, "TokenNotPresent", "JWT not present."),
        (Some(valid.clone()), "TokenNotPresent", "JWT not present."),
        (
            Some(format!(
                "Bearer {}",
                token(Algorithm::RS256, &key, &claims(json!({"exp": now() - 600})))
            )),
            "TokenExpired",
            "Invalid JWT.",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(
                    Algorithm::RS256,
                    &key,
                    &claims(json!({"aud": "api://billing"}))
                )
            )),
            "TokenAudienceNotAllowed",
            "Invalid JWT.",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(
                    Algorithm::RS256,
                    &key,
                    &claims(json!({"iss": "https://evil.test/"}))
                )
            )),
            "TokenIssuerNotAllowed",
            "Invalid JWT.",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(Algorithm::RS256, &key, &claims(json!({"roles": ["guest"]})))
            )),
            "TokenClaimValueNotAllowed",
            "Invalid JWT.",
        ),
        (
            Some(format!(
                "Bearer {}",
                token(Algorithm::HS256, &hmac, &claims(json!({})))
            )),
            "TokenSignatureKeyNotFound",
            "Invalid JWT.",
        ),
        (
            Some(format!("Bearer {}", tampered(&valid))),
            "TokenSignatureInvalid",
            "Invalid JWT.",
        ),
    ];
    for (authorization, reason, message) in refused {
        let response = call(authorization).await.unwrap();
        assert_eq!(response.status(), 401, "{reason}");
        assert_eq!(
            response.headers()["x-error"],
            format!("validate-jwt/{reason}").as_str()
        );
        let (status, body) = error_body(response).await;
        assert_eq!((status, body.as_str()), (401, message), "{reason}");
    }
    assert_eq!(
        backend.requests(),
        1,
        "only the valid token reached the backend"
    );
    // One fetch of the configuration and its keys, kept for the requests after it.
    assert_eq!(provider.calls(), (1, 1));
    let response = call(Some(format!("Bearer {valid}"))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(provider.calls(), (1, 1));
}
