//! Tests of the fakes themselves over real sockets: many tests rely on them, so they
//! must be right.

// `cfg(test)` lets clippy's allow-unwrap-in-tests cover helper functions too.
#[cfg(test)]
mod tests;
