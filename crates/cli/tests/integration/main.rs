//! End-to-end tests: the real `gatehouse` binary in front of real backends, over real
//! sockets on 127.0.0.1 with ephemeral ports.

// `cfg(test)` is always set here; the attribute tells clippy these are test modules.
#[cfg(test)]
mod common;

#[cfg(test)]
mod config_reload;
#[cfg(test)]
mod control_plane;
#[cfg(test)]
mod grpc;
#[cfg(test)]
mod hardening;
#[cfg(test)]
mod http3;
#[cfg(test)]
mod ingress;
#[cfg(test)]
mod limits;
#[cfg(test)]
mod metrics_scale;
#[cfg(test)]
mod operability;
#[cfg(test)]
mod policies;
#[cfg(test)]
mod portal_browser;
#[cfg(test)]
mod probing;
#[cfg(test)]
mod proxying;
#[cfg(test)]
mod routing;
#[cfg(test)]
mod shutdown;
#[cfg(test)]
mod subscriptions;
#[cfg(test)]
mod sync;
#[cfg(test)]
mod tls;
#[cfg(test)]
mod tls_control_plane;
#[cfg(test)]
mod validate_jwt;
#[cfg(test)]
mod validation;
#[cfg(test)]
mod websocket;
