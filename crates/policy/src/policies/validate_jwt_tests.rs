use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::test_util::{
    ErrorCase, block_on, check_errors, compile_in, compile_xml_with, facts, failed, header,
    in_section, request,
};
use crate::{
    CallError, CallFuture, CallResponse, CompileContext, Counters, ErrorKind, Flow, NamedValues,
    OutgoingCall, Pipeline, PolicyServices, RequestFacts, RequestState, SleepFuture,
};

/// 2024-01-02T03:04:05Z, the time the test services give.
const NOW: u64 = 1_704_164_645;

/// A 32-byte HMAC secret, and the same in base64 for `<key>`.
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
fn secret_base64() -> String {
    base64::engine::general_purpose::STANDARD.encode(SECRET)
}

/// A test-only RSA key (`openssl genrsa 2048`), its modulus (base64url) and a
/// self-signed certificate of it.
const RSA_PEM: &str = include_str!("validate_jwt_test_key.pem");
const RSA_N: &str = "wEaq_QFETONE-vm_tbDu7r4FgsxLZw7s5Z0iswihiM5spJpYrbVY_nqbcxtQ-SQT4kHIvKHvpM10ZP0DsP8nItf5lgOhd_TWVT-_g9BBhqlxzTL_Ti8QlQz2AULHGfyA8io7L3Chw9RoGOfsK9JnnIAMP-K8mnwhBygl0VlyvwYiSrm3Q_RQ-MHeVLw6FYrHVSTzUo4UGWiCQzOsKnUQu6BaozBJPjkfT4JBTogp1INZGy_JXRfHcNzfnAjPb-a0FiwtErbQqUButNuWEh2JJ14lhRyt9BSbg6Y1qPPH6jt380vHe4AToAMtzpJOEeBo8sxKDL8xab5zelsSbKkZ7Q";
const RSA_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIDFzCCAf+gAwIBAgIUOnt3i9rLPMrzCVuPhJuEw4aPXX8wDQYJKoZIhvcNAQEL
BQAwGjEYMBYGA1UEAwwPand0LWlzc3Vlci50ZXN0MCAXDTI2MTIwODAzMDA0NVoY
DzIxMjYxMTE0MDMwMDQ1WjAaMRgwFgYDVQQDDA9qd3QtaXNzdWVyLnRlc3QwggEi
MA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDARqr9AURM40T6+b+1sO7uvgWC
zEtnDuzlnSKzCKGIzmykmlittVj+eptzG1D5JBPiQci8oe+kzXRk/QOw/yci1/mW
A6F39NZVP7+D0EGGqXHNMv9OLxCVDPYBQscZ/IDyKjsvcKHD1GgY5+wr0mecgAw/
4ryafCEHKCXRWXK/BiJKubdD9FD4wd5UvDoVisdVJPNSjhQZaIJDM6wqdRC7oFqj
MEk+OR9PgkFOiCnUg1kbL8ldF8dw3N+cCM9v5rQWLC0SttCpQG6025YSHYknXiWF
HK30FJuDpjWo88fqO3fzS8d7gBOgAy3Okk4R4GjyzEoMvzFpvnN6WxJsqRntAgMB
AAGjUzBRMB0GA1UdDgQWBBQKuydL58pp2XdKyN/xKzbCdpMOkjAfBgNVHSMEGDAW
gBQKuydL58pp2XdKyN/xKzbCdpMOkjAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3
DQEBCwUAA4IBAQCC2qDazbEiL4WXehzGdjwLZjhp+UIlAF/cu3+nKwTP9TO2YGuf
AEr7Aq+UVuMW7vm3ym861WuO5EkP7vMt//sfF58FwwjnUx2K/x1dFtFxBQL7ZVas
Rq9ru6PscmN5xV33/Gf9eHeETWqrmcXM+aM1ecWeipqOJ6n1Ils0qIrlJNDKczF/
5bM5yBvl5ERUFcugVJJElQGfTDNhTMTlO8p9jbYlt8jBfi7WUA/2SB3SDWtR+IAA
CuUi33nAeUt4hYGUxcn+lyOEt6VvlArRCifhT988RbGTDIPzu11pH4X71gUt8yo1
nRmZJSbZHzwVuzhU5aTkvjsQCVl9kWeAMjsI
-----END CERTIFICATE-----";

/// A test-only P-256 key (PKCS #8 DER, base64) and its public point.
const EC_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxdUOTOVzqR0lF1Plc2gg1m2qLYpHN8lqUt2XkGliLVShRANCAAQ0Ig/ee7ZOwAhcdzyWddB8KluohihA6Sd1g7OFdZc2X55rr9MpU+b3JKHoHi4TZL39Ctu5MqcUbr14/yoqouQ7";
const EC_X: &str = "NCIP3nu2TsAIXHc8lnXQfCpbqIYoQOkndYOzhXWXNl8";
const EC_Y: &str = "nmuv0ylT5vckoegeLhNkvf0K27kypxRuvXj_Kiqi5Ds";

/// The DER of the body of a PEM block.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_der(&pem_der(RSA_PEM))
}

/// A token signed with `alg` and `key`, with `kid` and these claims.
fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs256(claims: &serde_json::Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), None, claims)
}

/// Claims valid at [`NOW`] for audience `api://orders` from issuer `https://issuer.test/`.
fn claims() -> serde_json::Value {
    json!({
        "sub": "ada",
        "aud": "api://orders",
        "iss": "https://issuer.test/",
        "exp": NOW + 600,
        "nbf": NOW - 60,
        "roles": ["reader", "writer"],
        "scp": "read write",
    })
}

/// `claims()` with `changes` applied (`null` removes a claim).
fn claims_with(changes: &serde_json::Value) -> serde_json::Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// A `<validate-jwt>` with an HS256 key and `extra` inside, `attributes` on it.
fn hs_policy(attributes: &str, extra: &str) -> String {
    format!(
        r#"<validate-jwt header-name="Authorization" {attributes}><issuer-signing-keys><key>{}</key></issuer-signing-keys>{extra}</validate-jwt>"#,
        secret_base64()
    )
}

/// Test services: answer the discovery and key-set URLs, count calls, and let the test
/// move the clock.
#[derive(Debug)]
struct IdentityProvider {
    now: AtomicU64,
    discovery_calls: AtomicUsize,
    jwks_calls: AtomicUsize,
    jwks: ArcSwap<String>,
    issuer: &'static str,
}

const DISCOVERY_URL: &str = "https://login.test/tenant/.well-known/openid-configuration";
const JWKS_URL: &str = "https://keys.test/tenant/jwks";

impl IdentityProvider {
    fn new(jwks: &serde_json::Value) -> Self {
        Self {
            now: AtomicU64::new(NOW),
            discovery_calls: AtomicUsize::new(0),
            jwks_calls: AtomicUsize::new(0),
            jwks: ArcSwap::from_pointee(jwks.to_string()),
            issuer: "https://login.test/tenant/v2.0",
        }
    }

    fn calls(&self) -> (usize, usize) {
        (
            self.discovery_calls.load(Ordering::SeqCst),
            self.jwks_calls.load(Ordering::SeqCst),
        )
    }

    fn advance(&self, seconds: u64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl PolicyServices for IdentityProvider {
    fn call(&self, call: OutgoingCall) -> CallFuture<'_> {
        let body = match call.url.as_str() {
            DISCOVERY_URL => {
                self.discovery_calls.fetch_add(1, Ordering::SeqCst);
                json!({"issuer": self.issuer, "jwks_uri": JWKS_URL}).to_string()
            }
            JWKS_URL => {
                self.jwks_calls.fetch_add(1, Ordering::SeqCst);
                (**self.jwks.load()).clone()
            }
            _ => {
                return Box::pin(std::future::ready(Err(CallError::Failed(
                    "connection refused".to_owned(),
                ))));
            }
        };
        Box::pin(std::future::ready(Ok(CallResponse {
            status: http::StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body),
        })))
    }

    fn now(&self) -> Duration {
        Duration::from_secs(self.now.load(Ordering::SeqCst))
    }

    fn elapsed(&self) -> Duration {
        Duration::ZERO
    }

    fn random_bytes(&self) -> [u8; 16] {
        [0; 16]
    }

    fn sleep(&self, _duration: Duration) -> SleepFuture {
        Box::pin(std::future::ready(()))
    }
}

fn rsa_jwk(kid: &str) -> serde_json::Value {
    json!({"kty": "RSA", "use": "sig", "kid": kid, "alg": "RS256", "n": RSA_N, "e": "AQAB"})
}

/// Runs inbound (waiting if it must) on a GET with `headers` and `query`, with
/// `services` (the time and calls), keeping the request.
fn run_with(
    pipeline: &Pipeline,
    services: &dyn PolicyServices,
    query: &str,
    headers: &[(&str, &str)],
) -> (Flow, RequestState) {
    let facts = RequestFacts {
        services: Some(services),
        ..facts(NOW)
    };
    let mut state = request(Method::GET, "/", query, headers);
    let flow = if pipeline.is_async() {
        block_on(pipeline.inbound_async(&facts, &Counters::new(), &mut state))
    } else {
        pipeline.inbound(&facts, &Counters::new(), &mut state)
    };
    (flow, state)
}

/// Runs with the clock at [`NOW`] and `Authorization: Bearer <token>`.
fn run_bearer(pipeline: &Pipeline, token: &str) -> Flow {
    let services = IdentityProvider::new(&json!({"keys": []}));
    let authorization = format!("Bearer {token}");
    run_with(pipeline, &services, "", &[("authorization", &authorization)]).0
}

/// The reason a flow failed with, asserting it failed as validate-jwt.
fn reason(flow: Flow) -> &'static str {
    let failure = failed(flow);
    assert_eq!(failure.error.source, "validate-jwt");
    failure.error.reason
}

#[test]
fn wrong_documents_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "no token source",
            section: "inbound",
            body: r#"<validate-jwt require-signed-tokens="false" />"#,
            at: "<validate-jwt",
            kind: ErrorKind::Missing,
            message: "one of `header-name`, `query-parameter-name` or `token-value`",
        },
        ErrorCase {
            name: "two token sources",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization" query-parameter-name="t" require-signed-tokens="false" />"#,
            at: "query-parameter-name=",
            kind: ErrorKind::Structure,
            message: "give only one of",
        },
        ErrorCase {
            name: "unknown attribute",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization" require-signed-tokens="false" audience="x" />"#,
            at: "audience=",
            kind: ErrorKind::UnknownAttribute,
            message: "unknown attribute `audience`",
        },
        ErrorCase {
            name: "bad status code",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization" failed-validation-httpcode="4011" require-signed-tokens="false" />"#,
            at: "failed-validation-httpcode=",
            kind: ErrorKind::InvalidValue,
            message: "`failed-validation-httpcode`",
        },
        ErrorCase {
            name: "no keys while tokens must be signed",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization" />"#,
            at: "<validate-jwt",
            kind: ErrorKind::InvalidValue,
            message: "no key to verify signed tokens with",
        },
        ErrorCase {
            name: "key not base64",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization"><issuer-signing-keys><key>not base64!</key></issuer-signing-keys></validate-jwt>"#,
            at: "not base64!",
            kind: ErrorKind::InvalidValue,
            message: "<key>: the key is not valid base64",
        },
        ErrorCase {
            name: "key too short",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization"><issuer-signing-keys><key>c2hvcnQ=</key></issuer-signing-keys></validate-jwt>"#,
            at: "c2hvcnQ=",
            kind: ErrorKind::InvalidValue,
            message: "at least 16 bytes",
        },
        ErrorCase {
            name: "modulus without exponent",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization"><issuer-signing-keys><key n="AQAB" /></issuer-signing-keys></validate-jwt>"#,
            at: "<key",
            kind: ErrorKind::Structure,
            message: "`n` (modulus) and `e` (exponent) go together",
        },
        ErrorCase {
            name: "small modulus",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization"><issuer-signing-keys><key n="AQAB" e="AQAB" /></issuer-signing-keys></validate-jwt>"#,
            at: "n=",
            kind: ErrorKind::InvalidValue,
            message: "at least 2048 are needed",
        },
        ErrorCase {
            name: "two forms of one key",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization"><issuer-signing-keys><key certificate-id="c">MDEyMzQ1Njc4OWFiY2RlZg==</key></issuer-signing-keys></validate-jwt>"#,
            at: "<key",
            kind: ErrorKind::Structure,
            message: "<key> takes one form",
        },
        ErrorCase {
            name: "unknown certificate",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization"><issuer-signing-keys><key certificate-id="issuer" /></issuer-signing-keys></validate-jwt>"#,
            at: "certificate-id=",
            kind: ErrorKind::InvalidValue,
            message: "unknown certificate `issuer`",
        },
        ErrorCase {
            name: "openid-config not a URL",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization"><openid-config url="/.well-known/openid-configuration" /></validate-jwt>"#,
            at: "url=",
            kind: ErrorKind::InvalidValue,
            message: "<openid-config> `url`: not an absolute URL",
        },
        ErrorCase {
            name: "openid-config not http",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization"><openid-config url="ftp://login.test/config" /></validate-jwt>"#,
            at: "url=",
            kind: ErrorKind::InvalidValue,
            message: "not an http or https URL",
        },
        ErrorCase {
            name: "decryption keys",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization" require-signed-tokens="false"><decryption-keys><key>MDEyMzQ1Njc4OWFiY2RlZg==</key></decryption-keys></validate-jwt>"#,
            at: "<decryption-keys",
            kind: ErrorKind::NotSupported,
            message: "encrypted tokens (JWE)",
        },
        ErrorCase {
            name: "empty audiences",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization" require-signed-tokens="false"><audiences /></validate-jwt>"#,
            at: "<audiences",
            kind: ErrorKind::Structure,
            message: "<audiences> needs at least one <audience>",
        },
        ErrorCase {
            name: "bad claim match",
            section: "inbound",
            body: r#"<validate-jwt header-name="Authorization" require-signed-tokens="false"><required-claims><claim name="a" match="most"><value>x</value></claim></required-claims></validate-jwt>"#,
            at: "match=",
            kind: ErrorKind::InvalidValue,
            message: "`match` must be `all` or `any`",
        },
        ErrorCase {
            name: "expression where APIM allows one but Gatehouse does not yet",
            section: "inbound",
            body: r#"<validate-jwt header-name="@("Authorization")" require-signed-tokens="false" />"#,
            at: "@(",
            kind: ErrorKind::NotSupported,
            message: "expression",
        },
        ErrorCase {
            name: "outside inbound",
            section: "outbound",
            body: r#"<validate-jwt header-name="Authorization" require-signed-tokens="false" />"#,
            at: "<validate-jwt",
            kind: ErrorKind::WrongSection,
            message: "inbound",
        },
    ]);
}

#[test]
fn keys_never_reach_debug_output() {
    let pipeline = compile_in("inbound", &hs_policy("", "")).unwrap();
    let document = crate::parse("test", &in_section("inbound", &hs_policy("", ""))).unwrap();
    for shown in [format!("{pipeline:?}"), format!("{document:?}")] {
        assert!(!shown.contains(&secret_base64()), "{shown}");
    }
}

#[test]
fn an_hs256_token_is_verified_and_its_claims_checked() {
    let pipeline = compile_in(
        "inbound",
        &hs_policy(
            r#"require-scheme="Bearer""#,
            r#"<audiences><audience>api://orders</audience></audiences><issuers><issuer>https://issuer.test/</issuer></issuers>"#,
        ),
    )
    .unwrap();
    assert!(!pipeline.is_async(), "inline keys need no wait");
    assert_eq!(run_bearer(&pipeline, &hs256(&claims())), Flow::Continue);

    let wrong_key = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another secret of thirty-two b.."),
        None,
        &claims(),
    );
    assert_eq!(reason(run_bearer(&pipeline, &wrong_key)), "TokenSignatureInvalid");
    let mut tampered = hs256(&claims());
    tampered.insert(tampered.rfind('.').unwrap() + 1, 'A');
    assert_eq!(reason(run_bearer(&pipeline, &tampered)), "TokenSignatureInvalid");

    let cases = [
        (json!({"exp": NOW - 1}), "TokenExpired"),
        (json!({"exp": null}), "JwtInvalid"),
        (json!({"exp": "tomorrow"}), "JwtInvalid"),
        (json!({"nbf": NOW + 30}), "JwtInvalid"),
        (json!({"aud": "api://billing"}), "TokenAudienceNotAllowed"),
        (json!({"aud": null}), "TokenAudienceNotAllowed"),
        (json!({"iss": "https://evil.test/"}), "TokenIssuerNotAllowed"),
        (json!({"iss": null}), "TokenIssuerNotAllowed"),
    ];
    for (changes, expected) in cases {
        let token = hs256(&claims_with(&changes));
        assert_eq!(reason(run_bearer(&pipeline, &token)), expected, "{changes}");
    }
    // An array audience with one allowed value passes.
    let token = hs256(&claims_with(&json!({"aud": ["api://billing", "api://orders"]})));
    assert_eq!(run_bearer(&pipeline, &token), Flow::Continue);

    // Not present, in another scheme, malformed.
    let services = IdentityProvider::new(&json!({"keys": []}));
    let (flow, _) = run_with(&pipeline, &services, "", &[]);
    let failure = failed(flow);
    assert_eq!(failure.error.reason, "TokenNotPresent");
    assert_eq!(failure.error.message, "JWT not present.");
    assert_eq!(failure.response.status, 401);
    assert_eq!(
        failure.response.body,
        r#"{"statusCode":401,"message":"JWT not present."}"#
    );
    let token = hs256(&claims());
    let (flow, _) = run_with(&pipeline, &services, "", &[("authorization", &token)]);
    assert_eq!(reason(flow), "TokenNotPresent", "no scheme");
    let basic = format!("Basic {token}");
    let (flow, _) = run_with(&pipeline, &services, "", &[("authorization", &basic)]);
    assert_eq!(reason(flow), "TokenNotPresent", "another scheme");
    let failure = failed(run_bearer(&pipeline, "not.a-token"));
    assert_eq!(failure.error.reason, "JwtInvalid");
    assert_eq!(
        failure.response.body,
        r#"{"statusCode":401,"message":"Invalid JWT."}"#
    );
    assert_eq!(reason(run_bearer(&pipeline, "a.b.c.d.e")), "JwtInvalid");
}

#[test]
fn messages_never_hold_the_token() {
    let pipeline = compile_in("inbound", &hs_policy("", "")).unwrap();
    let expired = hs256(&claims_with(&json!({"exp": NOW - 5})));
    let failure = failed(run_bearer(&pipeline, &expired));
    assert_eq!(failure.error.reason, "TokenExpired");
    for part in expired.split('.') {
        assert!(!failure.error.message.contains(part), "{}", failure.error.message);
    }
    assert!(!failure.error.message.contains(&secret_base64()));
}

#[test]
fn clock_skew_expiration_and_status_are_configurable() {
    let lenient = compile_in(
        "inbound",
        &hs_policy(
            r#"clock-skew="60" require-expiration-time="false" failed-validation-httpcode="403" failed-validation-error-message="Go away""#,
            "",
        ),
    )
    .unwrap();
    let cases = [
        (json!({"exp": NOW - 59}), true),
        (json!({"exp": NOW - 61}), false),
        (json!({"nbf": NOW + 59}), true),
        (json!({"nbf": NOW + 61}), false),
        (json!({"exp": null}), true),
    ];
    for (changes, passes) in cases {
        let flow = run_bearer(&lenient, &hs256(&claims_with(&changes)));
        assert_eq!(flow == Flow::Continue, passes, "{changes}: {flow:?}");
    }
    let failure = failed(run_bearer(&lenient, "x.y.z"));
    assert_eq!(failure.response.status, 403);
    assert_eq!(
        failure.response.body,
        r#"{"statusCode":403,"message":"Go away"}"#
    );
    // An expression message, evaluated per request.
    let computed = compile_in(
        "inbound",
        &hs_policy(
            r#"failed-validation-error-message="@("Denied for " + context.Request.Method)""#,
            "",
        ),
    )
    .unwrap();
    let failure = failed(run_bearer(&computed, "x.y.z"));
    assert_eq!(
        failure.response.body,
        r#"{"statusCode":401,"message":"Denied for GET"}"#
    );
}

#[test]
fn the_token_may_come_from_a_query_parameter_a_custom_header_or_an_expression() {
    let token = hs256(&claims());
    let services = IdentityProvider::new(&json!({"keys": []}));
    let key = secret_base64();
    let by_query = compile_in(
        "inbound",
        &format!(
            r#"<validate-jwt query-parameter-name="access_token"><issuer-signing-keys><key>{key}</key></issuer-signing-keys></validate-jwt>"#
        ),
    )
    .unwrap();
    let query = format!("a=1&access_token={token}");
    assert_eq!(run_with(&by_query, &services, &query, &[]).0, Flow::Continue);
    assert_eq!(reason(run_with(&by_query, &services, "a=1", &[]).0), "TokenNotPresent");

    // A custom header: the scheme is not required there (as in APIM), a plain token works.
    let by_header = compile_in(
        "inbound",
        &format!(
            r#"<validate-jwt header-name="X-Token" require-scheme="Bearer"><issuer-signing-keys><key>{key}</key></issuer-signing-keys></validate-jwt>"#
        ),
    )
    .unwrap();
    assert_eq!(
        run_with(&by_header, &services, "", &[("x-token", &token)]).0,
        Flow::Continue
    );

    let by_value = compile_in(
        "inbound",
        &format!(
            r#"<validate-jwt token-value="@(context.Request.Headers.GetValueOrDefault("X-Jwt", ""))"><issuer-signing-keys><key>{key}</key></issuer-signing-keys></validate-jwt>"#
        ),
    )
    .unwrap();
    assert_eq!(
        run_with(&by_value, &services, "", &[("x-jwt", &token)]).0,
        Flow::Continue
    );
    assert_eq!(reason(run_with(&by_value, &services, "", &[]).0), "TokenNotPresent");
}

#[test]
fn required_claims_match_all_or_any_value() {
    let pipeline = |claims: &str| {
        compile_in(
            "inbound",
            &hs_policy("", &format!("<required-claims>{claims}</required-claims>")),
        )
        .unwrap()
    };
    let token = hs256(&claims());
    let cases = [
        (r#"<claim name="sub" />"#, None),
        (r#"<claim name="sub"><value>ada</value></claim>"#, None),
        (
            r#"<claim name="roles" match="all"><value>reader</value><value>writer</value></claim>"#,
            None,
        ),
        (
            r#"<claim name="roles" match="all"><value>reader</value><value>admin</value></claim>"#,
            Some("TokenClaimValueNotAllowed"),
        ),
        (
            r#"<claim name="roles" match="any"><value>admin</value><value>writer</value></claim>"#,
            None,
        ),
        (
            r#"<claim name="scp" separator=" "><value>write</value></claim>"#,
            None,
        ),
        (
            r#"<claim name="scp"><value>write</value></claim>"#,
            Some("TokenClaimValueNotAllowed"),
        ),
        (
            r#"<claim name="tid" /><claim name="oid" />"#,
            Some("TokenClaimNotFound"),
        ),
    ];
    for (claims, expected) in cases {
        let flow = run_bearer(&pipeline(claims), &token);
        match expected {
            None => assert_eq!(flow, Flow::Continue, "{claims}"),
            Some(expected) => assert_eq!(reason(flow), expected, "{claims}"),
        }
    }
    let failure = failed(run_bearer(
        &pipeline(r#"<claim name="tid" /><claim name="oid" />"#),
        &token,
    ));
    assert_eq!(
        failure.error.message,
        "JWT token is missing the following claims: tid, oid. Access denied."
    );
}

#[test]
fn the_validated_token_is_kept_as_a_jwt_object() {
    let pipeline = compile_in(
        "inbound",
        &format!(
            r#"{}<set-header name="X-Sub" exists-action="override"><value>@(((Jwt)context.Variables["jwt"]).Subject)</value></set-header><set-header name="X-Roles" exists-action="override"><value>@(((Jwt)context.Variables["jwt"]).Claims.GetValueOrDefault("roles", ""))</value></set-header>"#,
            hs_policy(r#"output-token-variable-name="jwt""#, "")
        ),
    )
    .unwrap();
    let services = IdentityProvider::new(&json!({"keys": []}));
    let authorization = format!("Bearer {}", hs256(&claims()));
    let (flow, state) = run_with(&pipeline, &services, "", &[("authorization", &authorization)]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.headers, "x-sub"), Some("ada"));
    assert_eq!(header(&state.headers, "x-roles"), Some("reader,writer"));
}

#[test]
fn unsigned_tokens_pass_only_when_signatures_are_not_required() {
    let unsigned = {
        let encode = |value: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        format!("{}.{}.", encode(&json!({"alg": "none"})), encode(&claims()))
    };
    let strict = compile_in("inbound", &hs_policy("", "")).unwrap();
    assert_eq!(reason(run_bearer(&strict, &unsigned)), "TokenSignatureInvalid");
    let lenient = compile_in(
        "inbound",
        r#"<validate-jwt header-name="Authorization" require-signed-tokens="false" />"#,
    )
    .unwrap();
    assert_eq!(run_bearer(&lenient, &unsigned), Flow::Continue);
    // A signed token with no key to check it with fails.
    assert_eq!(
        reason(run_bearer(&lenient, &hs256(&claims()))),
        "TokenSignatureKeyNotFound"
    );
}

#[test]
fn rsa_keys_from_modulus_and_exponent_or_a_certificate_verify_rs256_and_ps256() {
    let inline = compile_in(
        "inbound",
        &format!(
            r#"<validate-jwt header-name="Authorization"><issuer-signing-keys><key id="k1" n="{RSA_N}" e="AQAB" /></issuer-signing-keys></validate-jwt>"#
        ),
    )
    .unwrap();
    let key = rsa_key();
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS512,
    ] {
        let token = sign(alg, &key, Some("k1"), &claims());
        assert_eq!(run_bearer(&inline, &token), Flow::Continue, "{alg:?}");
    }
    // A token naming a key the policy does not have.
    let token = sign(Algorithm::RS256, &key, Some("other"), &claims());
    assert_eq!(run_bearer(&inline, &token), Flow::Continue, "an unknown kid tries every key, as .NET does");
    // The RSA key as an HMAC secret (algorithm confusion) is never tried.
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_N.as_bytes()),
        Some("k1"),
        &claims(),
    );
    assert_eq!(reason(run_bearer(&inline, &confused)), "TokenSignatureKeyNotFound");

    let named = NamedValues::new();
    let certificates = [gatehouse_model::Certificate {
        id: "issuer".to_owned(),
        certificate_pem: RSA_CERT.to_owned(),
        private_key_pem: None,
        client_ca: false,
    }];
    let cx = CompileContext::new(&named).with_certificates(&certificates);
    let by_certificate = compile_xml_with(
        &in_section(
            "inbound",
            r#"<validate-jwt header-name="Authorization"><issuer-signing-keys><key certificate-id="issuer" /></issuer-signing-keys></validate-jwt>"#,
        ),
        &cx,
    )
    .unwrap();
    let token = sign(Algorithm::RS256, &key, None, &claims());
    assert_eq!(run_bearer(&by_certificate, &token), Flow::Continue);
    assert_eq!(
        reason(run_bearer(&by_certificate, &hs256(&claims()))),
        "TokenSignatureKeyNotFound"
    );
}

#[test]
fn openid_keys_are_fetched_once_cached_and_refetched_for_an_unknown_kid() {
    let provider = IdentityProvider::new(&json!({"keys": [
        rsa_jwk("k1"),
        {"kty": "EC", "crv": "P-256", "kid": "ec1", "x": EC_X, "y": EC_Y},
        {"kty": "RSA", "use": "enc", "kid": "encryption", "n": RSA_N, "e": "AQAB"},
    ]}));
    let pipeline = compile_in(
        "inbound",
        &format!(
            r#"<validate-jwt header-name="Authorization"><openid-config url="{DISCOVERY_URL}" /><audiences><audience>api://orders</audience></audiences></validate-jwt>"#
        ),
    )
    .unwrap();
    assert!(pipeline.is_async());
    let key = rsa_key();
    let claims = claims_with(&json!({"iss": "https://login.test/tenant/v2.0", "exp": NOW + 10_000}));
    let bearer = |token: &str| format!("Bearer {token}");
    let run = |token: &str| run_with(&pipeline, &provider, "", &[("authorization", &bearer(token))]).0;

    assert_eq!(run(&sign(Algorithm::RS256, &key, Some("k1"), &claims)), Flow::Continue);
    assert_eq!(provider.calls(), (1, 1));
    let ec = EncodingKey::from_ec_der(
        &base64::engine::general_purpose::STANDARD
            .decode(EC_PKCS8)
            .unwrap(),
    );
    assert_eq!(run(&sign(Algorithm::ES256, &ec, Some("ec1"), &claims)), Flow::Continue);
    assert_eq!(provider.calls(), (1, 1), "the keys are kept, not fetched per request");

    // The discovery document's issuer is the one allowed.
    let elsewhere = claims_with(&json!({"iss": "https://issuer.test/"}));
    assert_eq!(
        reason(run(&sign(Algorithm::RS256, &key, Some("k1"), &elsewhere))),
        "TokenIssuerNotAllowed"
    );

    // The provider rotates to a new key: a token naming it makes the policy fetch
    // again (once: another unknown key within a minute is not fetched for; the EC key
    // is gone from the new set).
    provider.jwks.store(std::sync::Arc::new(
        json!({"keys": [rsa_jwk("k1"), rsa_jwk("k2")]}).to_string(),
    ));
    provider.advance(61);
    assert_eq!(run(&sign(Algorithm::RS256, &key, Some("k2"), &claims)), Flow::Continue);
    assert_eq!(provider.calls(), (2, 2));
    assert_eq!(
        reason(run(&sign(Algorithm::ES256, &ec, Some("k3"), &claims))),
        "TokenSignatureKeyNotFound"
    );
    assert_eq!(provider.calls(), (2, 2), "at most one fetch a minute");
    provider.advance(30);
    assert_eq!(
        reason(run(&sign(Algorithm::ES256, &ec, Some("k3"), &claims))),
        "TokenSignatureKeyNotFound"
    );
    assert_eq!(provider.calls(), (2, 2));
    provider.advance(31);
    assert_eq!(
        reason(run(&sign(Algorithm::ES256, &ec, Some("k3"), &claims))),
        "TokenSignatureKeyNotFound"
    );
    assert_eq!(provider.calls(), (3, 3), "a minute later, fetched again");

    // Known keys are fetched again after an hour.
    provider.advance(3_599);
    assert_eq!(run(&sign(Algorithm::RS256, &key, Some("k1"), &claims)), Flow::Continue);
    assert_eq!(provider.calls(), (3, 3));
    provider.advance(1);
    assert_eq!(run(&sign(Algorithm::RS256, &key, Some("k1"), &claims)), Flow::Continue);
    assert_eq!(provider.calls(), (4, 4));
}

#[test]
fn an_unreachable_openid_configuration_fails_closed_and_is_retried_later() {
    let provider = IdentityProvider::new(&json!({"keys": [rsa_jwk("k1")]}));
    let pipeline = compile_in(
        "inbound",
        r#"<validate-jwt header-name="Authorization"><openid-config url="https://down.test/.well-known/openid-configuration" /></validate-jwt>"#,
    )
    .unwrap();
    let token = sign(Algorithm::RS256, &rsa_key(), Some("k1"), &claims());
    let authorization = format!("Bearer {token}");
    let failure = failed(run_with(&pipeline, &provider, "", &[("authorization", &authorization)]).0);
    assert_eq!(failure.error.reason, "TokenSignatureKeyNotFound");
    assert!(
        failure
            .error
            .message
            .contains("OpenID configuration at https://down.test: the call failed"),
        "{}",
        failure.error.message
    );
    assert!(!failure.error.message.contains("well-known"), "origins only");
    assert_eq!(failure.response.status, 401);

    // Without services (a synchronous run), the step says it cannot wait.
    let mut state = request(Method::GET, "/", "", &[("authorization", &authorization)]);
    let flow = pipeline.inbound(&facts(NOW), &Counters::new(), &mut state);
    assert!(failed(flow).error.message.contains("synchronous"));
}
