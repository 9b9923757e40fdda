//! The Gatehouse data plane.
