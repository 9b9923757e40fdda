//! APIM policy expressions: the sandboxed C# subset written as `@( ... )` (one
//! expression) and `@{ ... }` (statements that `return` a value) inside policy documents.
//!
//! An [`Expression`] is compiled once, at load ([`Expression::compile`]: lex, parse into a
//! typed AST whose nodes carry their line and column, then check the names), and
//! evaluated per request ([`Expression::evaluate`]) against a [`Host`], the gateway's
//! context object model. Evaluation never re-parses.
//!
//! # Supported
//!
//! - Literals: integers (`123`, `123L`), floating (`1.5`, `1.5d`, `2m`; `decimal` is a
//!   double), strings with C# escapes, verbatim `@"..."`, interpolated `$"...{e}..."`
//!   (no format specifiers), characters (evaluated as one-character strings), `true`,
//!   `false`, `null`.
//! - Operators with C# precedence: `! - +` (unary), `* / %`, `+ -`, `< <= > >= is as`,
//!   `== !=`, `&&`, `||`, `??`, `?:`; member access `.`, null-conditional `?.` and `?[`
//!   (short-circuiting the whole chain), indexers, method calls with generic arguments
//!   (`GetValueOrDefault<string>(...)`) and named arguments (passed by position), casts to
//!   a fixed list of types (`string`, `int`, `long`, `double`, `bool`, `decimal`,
//!   `JObject`, `JArray`, `JToken`, `IResponse`, `IRequest`, `object`), lambdas as
//!   arguments of the LINQ built-ins, `new JObject()`, `new JArray(...)`, `new [] { ... }`.
//! - Statements in blocks: `var x = e;` (and `string x = e;`), `x = e;`, `x += e;`,
//!   `x -= e;`, `if`/`else`, `{ ... }`, `return e;`, `foreach (var x in e)`,
//!   `using (var x = e) ...`, typed declarations with or without a value (`string[] v;`).
//! - Built-ins (the crate's own, not the host's): string members (`Length`, `Contains`,
//!   `StartsWith`, `EndsWith`, `IndexOf`, `Substring`, `Split`, `Replace`, `ToLower`,
//!   `ToUpper`, `ToLowerInvariant`, `ToUpperInvariant`, `Trim`, `TrimStart`, `TrimEnd`,
//!   `PadLeft`, `PadRight`, `Equals`, `ToString`), `string.IsNullOrEmpty`,
//!   `IsNullOrWhiteSpace`, `Join`, `Concat`, `Format` (`{0}` placeholders), `int.Parse`,
//!   `long.Parse`, `double.Parse`, `decimal.Parse`, `bool.Parse`, `JObject.Parse`,
//!   `JArray.Parse`, `JToken.Parse`, `Convert.ToString`/`ToInt32`/`ToInt64`/`ToDouble`/
//!   `ToBoolean`, `Math.Max`/`Min`/`Abs`/`Floor`/`Ceiling`/`Round`, JSON indexers,
//!   `Count`, `ContainsKey` and `Value<T>(key)`, and LINQ on arrays (`Where`, `Select`,
//!   `Any`, `All`, `Count`, `First`, `FirstOrDefault`, `Contains`, `ToArray`, `ToList`,
//!   `OrderBy`, `OrderByDescending`, `Sum`, `Average`, `Max`, `Min`, `Distinct`, `Skip`,
//!   `Take`, `Last`, `LastOrDefault`, `Reverse`; strings sort ordinally).
//! - Dates and times ([`Value::DateTime`], [`Value::TimeSpan`], both in .NET ticks of
//!   100 ns): `DateTime.UtcNow`/`Now`/`Today`/`MinValue`/`MaxValue`/`UnixEpoch`/`Parse`/
//!   `DaysInMonth`/`IsLeapYear`/`Compare`/`SpecifyKind`, `new DateTime(...)`,
//!   `DateTimeOffset.UtcNow`/`Now`/`Parse`/`FromUnixTimeSeconds`/`FromUnixTimeMilliseconds`,
//!   `TimeSpan.Zero`/`MaxValue`/`MinValue`/`FromTicks`/`FromMilliseconds`/`FromSeconds`/
//!   `FromMinutes`/`FromHours`/`FromDays`/`Parse`, `new TimeSpan(...)`, their properties
//!   and methods (`AddDays`, `AddMonths`, `Subtract`, `ToUnixTimeSeconds`, `TotalSeconds`,
//!   ...), the operators `DateTime - DateTime`, `DateTime ± TimeSpan`, `TimeSpan ± TimeSpan`,
//!   `-TimeSpan` and comparisons, and formatting with `ToString(format)` (standard and
//!   custom formats) and `string.Format("{0:format}", ...)`; `Guid.NewGuid()`,
//!   `Guid.Empty` and `Guid.Parse` (a `Guid` is a lowercase hyphenated string;
//!   `ToString("N"|"D"|"B"|"P")` formats one); `DayOfWeek.Monday`... and
//!   `DateTimeKind.Utc`... (strings). The current time and a GUID's random bytes come from
//!   the [`Host`] ([`Host::now`], [`Host::random_guid`]): this crate never reads a clock.
//! - Bytes and text ([`Value::Bytes`], a `byte[]`): `Encoding.UTF8`/`ASCII`/`Unicode`
//!   `.GetBytes`/`GetString`/`GetByteCount`, a `byte[]`'s `Length`, indexer, `foreach` and
//!   LINQ, `Convert.ToBase64String`/`FromBase64String`/`ToHexString`/`FromHexString`,
//!   `BitConverter.ToString`, `WebUtility.UrlEncode`/`UrlDecode`/`HtmlEncode`/`HtmlDecode`,
//!   `Uri.EscapeDataString`/`UnescapeDataString`, and `new Uri(text)` ([`Value::Native`])
//!   with `Scheme`, `Host`, `Port`, `AbsolutePath`, `Query`, `Fragment`, `PathAndQuery`,
//!   `AbsoluteUri`, `Authority`, `UserInfo`, `IsDefaultPort`, `Segments`.
//! - Regular expressions: `Regex.IsMatch`/`Match`/`Matches`/`Replace` (with .NET's `$1`,
//!   `${name}`, ... or a lambda)/`Split`/`Unescape`, `new Regex(pattern[, options])` and
//!   its methods, `RegexOptions` (combined with `|`), and the `Match`, `GroupCollection`
//!   and `Group` objects ([`Value::Native`]). A literal pattern is compiled once at load
//!   (an invalid one is refused there); a computed one per evaluation, paid in steps.
//! - Hashing: `SHA1`/`SHA256`/`SHA384`/`SHA512`/`MD5` `.Create()` and `.HashData(bytes)`,
//!   `new SHA256Managed()` and the like, `new HMACSHA1`/`HMACSHA256`/`HMACSHA384`/
//!   `HMACSHA512(key)` and `HMACSHA256.HashData(key, bytes)`, `ComputeHash(bytes[, offset,
//!   count])`, `HashSize`, `Dispose()`; `using (var h = ...) { ... }` declares `h` for its
//!   block.
//! - APIM's extension methods on strings (which accept null): `AsJwt()` and
//!   `TryParseJwt(out var jwt)` (a `Jwt`: `Id`, `Algorithm`, `Type`, `Issuer`, `Subject`,
//!   `Audiences`, `ExpirationTime`, `NotBefore`, `IssuedAt`, `Claims` with
//!   `GetValueOrDefault(name[, default])` joining the values with `,`, an indexer,
//!   `ContainsKey`, `Count`, `Keys`; decoded, not validated), `AsBasic()` and
//!   `TryParseBasic(out var credentials)` (`UserId`, `Password`), and
//!   `int`/`long`/`double`/`decimal`/`bool`/`DateTime`/`DateTimeOffset`/`TimeSpan`/`Guid`
//!   `.TryParse(text, out var n)`, and
//!   `TryGetValue(key, out var v)` of the host's dictionaries (through their `ContainsKey`
//!   and indexer), a `JObject` and `Claims`: `out var x`, `out T x` and `out x` only in
//!   these calls.
//! - `JToken.ToString(Formatting.None|Indented)`, `JsonConvert.SerializeObject(value[,
//!   formatting])` and `JsonConvert.DeserializeObject[<JObject|JArray|JToken>](text)`.
//! - Namespace-qualified names of the types above (`System.Text.Encoding`,
//!   `System.Net.WebUtility`, `Newtonsoft.Json.Linq.JObject`) stand for the short ones.
//!
//! Load-time checks ([`check`]): the only free names are `context` and the static types
//! in [`check::STATIC_TYPES`], with only the members implemented (`Math.Sqrt` is refused
//! at load, not at request time); anything else (`System.IO.File...`) is rejected with
//! its line and column, as are assignment to the context and a block that can finish without
//! returning a value.
//!
//! Each evaluation runs within [`Limits`]: a budget of steps (default 10 000: each node,
//! statement, `foreach` iteration and lambda call costs one) and caps on string length
//! (1 MiB) and array length (65 536 items), so an expression cannot stall the gateway.
//!
//! # Differences from .NET
//!
//! `int` and `long` are both 64-bit and arithmetic wraps; string lengths and indexes count
//! Unicode scalar values, not UTF-16 units; integer division by zero is an error, double
//! division by zero is infinity as in .NET; JSON scalars read from a `JObject` become
//! plain values. A `byte[]`
//! counts against the string length cap, and two are equal (`==`) when their bytes are. A
//! `Uri` is normalised as the WHATWG URL standard does (`ToString()` is the percent-encoded
//! `AbsoluteUri`). Regular expressions are the `regex` crate's, linear in time: what needs
//! backtracking (lookaround, backreferences) is refused, `$` matches only at the very end
//! without `Multiline`, .NET's group numbering (unnamed groups first) is kept, and `Index`
//! and `Length` count Unicode scalar values.
//!
//! Dates and times are always UTC: the gateway runs in UTC, so `DateTime.Now` is
//! `DateTime.UtcNow`, `ToLocalTime()` and `ToUniversalTime()` change nothing, a parsed
//! offset is applied and dropped (a `DateTimeOffset` is the UTC instant it denotes, its
//! `Offset` is zero), and `K` formats as `Z` and `zzz` as `+00:00`, where .NET would print
//! an empty `Kind` or the server's offset. Formatting is .NET's invariant culture
//! (`ToString()` is `MM/dd/yyyy HH:mm:ss`). `DayOfWeek` is the English day name, a string
//! (`(int)d.DayOfWeek` is not available). `AddDays` and friends take whole units exactly
//! and truncate the fraction to a tick, and `TimeSpan.FromSeconds` and friends truncate to
//! a tick, as .NET 7 and later do (.NET Framework rounded to the millisecond).
//!
//! Not yet wired into the policies: the policy crate's integration is a later step.

pub mod ast;
pub mod check;
mod datetime;
mod error;
mod eval;
pub mod lexer;
mod native;
pub mod parser;
mod value;

pub use error::{EvalError, ExprError, Span};
pub use eval::{Expression, ExpressionKind, Host, HostError, Limits};
pub use native::Native;
pub use value::{HostObject, Value};

#[cfg(test)]
#[path = "test_host.rs"]
mod test_host;

#[cfg(test)]
#[path = "proptest_tests.rs"]
mod proptest_tests;
