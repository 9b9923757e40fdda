//! Fake backends and helpers shared by Gatehouse tests.
