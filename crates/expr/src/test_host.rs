//! `MapHost`: a test [`Host`] serving a small context model from maps.

use std::collections::HashMap;
use std::time::Duration;

use crate::{Host, HostError, HostObject, Value};

/// Serves `context.Request.Method`, `.Headers` (`GetValueOrDefault`, `ContainsKey`,
/// indexer), `.Url.Path`, `context.Variables` (indexer, `GetValueOrDefault<T>`,
/// `ContainsKey`) and a null `context.Response`; its clock is stopped at
/// [`MapHost::NOW`] and its "random" GUID bytes are [`MapHost::GUID`], so that results are
/// deterministic.
pub(crate) struct MapHost {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) variables: HashMap<String, Value>,
    /// What `now()` answers.
    pub(crate) now: Option<Duration>,
    /// What `random_guid()` answers.
    pub(crate) guid: Option<[u8; 16]>,
}

impl MapHost {
    /// 2024-01-02T03:04:05.1234567Z (a Tuesday), since the Unix epoch.
    pub(crate) const NOW: Duration = Duration::new(1_704_164_645, 123_456_700);
    /// The bytes `random_guid()` gives: 00 11 22 ... ff.
    pub(crate) const GUID: [u8; 16] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];

    /// A token (HS256, signature not valid) whose payload is `{"sub":"1234567890","name":
    /// "John Doe","iss":"https://login.contoso.com/","aud":["api://a","api://b"],"exp":
    /// 1704164645,"nbf":1704160000.5,"iat":1704160000,"jti":"abc-123","roles":["admin",
    /// "reader"],"admin":true,"n":42,"obj":{"x":1},"é":"ü"}`; the `Authorization` header is
    /// `Bearer` and this token.
    pub(crate) const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaXNzIjoiaHR0cHM6Ly9sb2dpbi5jb250b3NvLmNvbS8iLCJhdWQiOlsiYXBpOi8vYSIsImFwaTovL2IiXSwiZXhwIjoxNzA0MTY0NjQ1LCJuYmYiOjE3MDQxNjAwMDAuNSwiaWF0IjoxNzA0MTYwMDAwLCJqdGkiOiJhYmMtMTIzIiwicm9sZXMiOlsiYWRtaW4iLCJyZWFkZXIiXSwiYWRtaW4iOnRydWUsIm4iOjQyLCJvYmoiOnsieCI6MX0sIlx1MDBlOSI6Ilx1MDBmYyJ9.c2ln";
    /// `{"alg":"none"}.{"aud":"single"}.` (no signature), the variable `unsigned`; the
    /// variable `basic` is `Basic` and `alice:p@ss:word` in Base64.
    pub(crate) const UNSIGNED_JWT: &str = "eyJhbGciOiJub25lIn0.eyJhdWQiOiJzaW5nbGUifQ.";

    pub(crate) fn sample() -> Self {
        let bearer = format!("Bearer {}", Self::JWT);
        let headers = [
            ("Accept", "application/json"),
            ("X-Tenant", "contoso"),
            ("Authorization", bearer.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let variables = [
            ("user", Value::from("alice")),
            ("count", Value::Int(3)),
            ("basic", Value::from("Basic YWxpY2U6cEBzczp3b3Jk")),
            ("unsigned", Value::from(Self::UNSIGNED_JWT)),
            (
                "items",
                Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self {
            method: "GET".to_owned(),
            path: "/orders/42".to_owned(),
            headers,
            variables,
            now: Some(Self::NOW),
            guid: Some(Self::GUID),
        }
    }

    fn header(&self, name: &str) -> Option<&String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

fn obj(id: &str) -> Value {
    Value::Object(HostObject::new(id))
}

fn key(v: &Value) -> Result<&str, HostError> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(HostError::Failed("the key must be a string".to_owned())),
    }
}

impl Host for MapHost {
    fn member(&self, object: &HostObject, name: &str) -> Result<Value, HostError> {
        Ok(match (object.id(), name) {
            ("context", "Request") => obj("context.Request"),
            ("context", "Variables") => obj("context.Variables"),
            ("context", "Response") => Value::Null,
            ("context.Request", "Method") => Value::from(self.method.as_str()),
            ("context.Request", "Headers") => obj("context.Request.Headers"),
            ("context.Request", "Url") => obj("context.Request.Url"),
            ("context.Request.Url", "Path") => Value::from(self.path.as_str()),
            ("context.Request.Headers" | "context.Variables", "Count") => Value::Int(
                i64::try_from(if object.id() == "context.Variables" {
                    self.variables.len()
                } else {
                    self.headers.len()
                })
                .unwrap_or_default(),
            ),
            _ => return Err(HostError::UnknownMember),
        })
    }

    fn index(&self, object: &HostObject, index: &Value) -> Result<Value, HostError> {
        match object.id() {
            "context.Variables" => {
                let k = key(index)?;
                self.variables
                    .get(k)
                    .cloned()
                    .ok_or_else(|| HostError::Failed(format!("the variable `{k}` is not set")))
            }
            "context.Request.Headers" => {
                let k = key(index)?;
                self.header(k)
                    .map(|v| Value::from(v.as_str()))
                    .ok_or_else(|| HostError::Failed(format!("the header `{k}` is not present")))
            }
            _ => Err(HostError::UnknownMember),
        }
    }

    fn call(
        &self,
        object: &HostObject,
        method: &str,
        type_argument: Option<&str>,
        args: &[Value],
    ) -> Result<Value, HostError> {
        match (object.id(), method, args) {
            ("context.Request.Headers", "GetValueOrDefault", [name, rest @ ..]) => Ok(self
                .header(key(name)?)
                .map(|v| Value::from(v.as_str()))
                .unwrap_or_else(|| rest.first().cloned().unwrap_or(Value::Null))),
            ("context.Request.Headers", "ContainsKey", [name]) => {
                Ok(Value::Bool(self.header(key(name)?).is_some()))
            }
            ("context.Variables", "GetValueOrDefault", [name, rest @ ..]) => {
                let found = self.variables.get(key(name)?).cloned();
                match (found, type_argument) {
                    (Some(v @ Value::String(_)), Some("string"))
                    | (Some(v @ Value::Int(_)), Some("int" | "long"))
                    | (Some(v), None) => Ok(v),
                    (Some(v), Some(ty)) => Err(HostError::Failed(format!(
                        "the variable is a {}, not a {ty}",
                        v.type_name()
                    ))),
                    (None, _) => Ok(rest.first().cloned().unwrap_or(Value::Null)),
                }
            }
            ("context.Variables", "ContainsKey", [name]) => {
                Ok(Value::Bool(self.variables.contains_key(key(name)?)))
            }
            _ => Err(HostError::UnknownMember),
        }
    }

    fn items(&self, object: &HostObject) -> Result<Vec<Value>, HostError> {
        match object.id() {
            "context.Request.Headers" => {
                let mut names: Vec<_> = self
                    .headers
                    .keys()
                    .map(|k| Value::from(k.as_str()))
                    .collect();
                names.sort_by_key(ToString::to_string);
                Ok(names)
            }
            other => Err(HostError::Failed(format!("`{other}` cannot be enumerated"))),
        }
    }

    fn is_instance(&self, object: &HostObject, type_name: &str) -> bool {
        object.id() == "context.Request" && type_name == "IRequest"
    }

    fn now(&self) -> Option<Duration> {
        self.now
    }

    fn random_guid(&self) -> Option<[u8; 16]> {
        self.guid
    }
}
