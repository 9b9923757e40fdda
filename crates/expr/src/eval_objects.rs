//! `new Random(...)` and `new JProperty(...)` (with `new JObject(properties...)`), and
//! `GetHashCode()` on strings, which real policies seed a `Random` with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Evaluator, bad_cast, failed, unknown};
use crate::error::{EvalError, Span};
use crate::native::{Native, NativeKind};
use crate::value::Value;

/// A `Random`'s state: SplitMix64, one step per draw. A seeded one repeats its
/// sequence for the seed (not .NET's sequence); an unseeded one starts from the host's
/// randomness.
#[derive(Debug)]
pub(crate) struct RandomState(AtomicU64);

/// Two `Random`s are equal when they are the same object, as in .NET.
impl PartialEq for RandomState {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl RandomState {
    fn next_u64(&self) -> u64 {
        const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
        // Relaxed: one evaluation uses a Random at a time; the atomic is for `Sync`.
        let state = self
            .0
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[low, high)`; `high > low`.
    fn below(&self, low: i64, high: i64) -> i64 {
        let span = high.abs_diff(low);
        // The rejection-free multiply-shift: bias at most span / 2^64.
        let offset = u64::try_from((u128::from(self.next_u64()) * u128::from(span)) >> 64)
            .unwrap_or_default();
        low.wrapping_add_unsigned(offset)
    }
}

/// .NET's `string.GetHashCode()` is randomized per process; Gatehouse gives a stable
/// one (FNV-1a over the UTF-16 code units, as an `int`).
pub(super) fn string_hash(text: &str) -> i64 {
    let mut hash: u32 = 0x811C_9DC5;
    for unit in text.encode_utf16() {
        for byte in unit.to_le_bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    i64::from(i32::from_ne_bytes(hash.to_ne_bytes()))
}

impl Evaluator<'_> {
    /// `new Random()`, `new Random(seed)`, `new JProperty(name, value)`, and
    /// `new JObject(property, ...)`; `None` for another type.
    pub(super) fn object_new(
        &self,
        type_name: &str,
        args: &[Value],
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        Some(match (type_name, args) {
            ("Random", []) => match self.host.random_guid() {
                Some(bytes) => {
                    let mut seed = [0; 8];
                    seed.copy_from_slice(&bytes[..8]);
                    Ok(random(u64::from_le_bytes(seed)))
                }
                None => Err(failed(
                    span,
                    "`new Random()` needs the gateway's randomness",
                )),
            },
            ("Random", [Value::Int(seed)]) => Ok(random(seed.cast_unsigned())),
            ("Random", _) => Err(failed(span, "`new Random` takes nothing or an int seed")),
            ("JProperty", [Value::String(name), value]) => Ok(Value::Native(Native::new(
                NativeKind::JProperty(name.to_string(), value.to_json()),
            ))),
            ("JProperty", _) => Err(failed(
                span,
                "`new JProperty` takes a name (a string) and a value",
            )),
            ("JObject", properties) => {
                let mut object = serde_json::Map::new();
                for property in properties {
                    match property {
                        Value::Native(native) => match native.kind() {
                            NativeKind::JProperty(name, value) => {
                                object.insert(name.clone(), value.clone());
                            }
                            _ => return Some(Err(not_a_property(property, span))),
                        },
                        _ => return Some(Err(not_a_property(property, span))),
                    }
                }
                Ok(Value::Json(serde_json::Value::Object(object)))
            }
            _ => return None,
        })
    }

    /// The methods of a `Random`.
    pub(super) fn random_method(
        state: &RandomState,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        let int = |value: &Value| match value {
            Value::Int(n) => Ok(*n),
            other => Err(bad_cast(
                span,
                format!("`Random.{method}` takes ints, not {}", other.type_name()),
            )),
        };
        let (low, high) = match (method, args) {
            ("NextDouble", []) => {
                // 53 random bits, as a double in [0, 1).
                let bits = state.next_u64() >> 11;
                #[allow(clippy::cast_precision_loss, reason = "53 bits fit a double exactly")]
                return Ok(Value::Double(bits as f64 / (1_u64 << 53) as f64));
            }
            ("Next", []) => (0, i64::from(i32::MAX)),
            ("Next", [max]) => (0, int(max)?),
            ("Next", [min, max]) => (int(min)?, int(max)?),
            _ => return Err(unknown(span, method, "`Random`")),
        };
        if high < low || (method == "Next" && args.len() == 1 && high < 0) {
            return Err(failed(
                span,
                format!("`Random.Next`: the range {low} to {high} is empty"),
            ));
        }
        if high == low {
            return Ok(Value::Int(low));
        }
        Ok(Value::Int(state.below(low, high)))
    }
}

fn random(seed: u64) -> Value {
    Value::Native(Native::new(NativeKind::Random(Arc::new(RandomState(
        AtomicU64::new(seed),
    )))))
}

fn not_a_property(value: &Value, span: Span) -> EvalError {
    bad_cast(
        span,
        format!(
            "`new JObject(...)` takes JProperty values, not {}",
            value.type_name()
        ),
    )
}
