//! `ip-filter`: allows or forbids callers by IP address (inbound).
//!
//! ```xml
//! <ip-filter action="allow | forbid">
//!     <address>13.66.201.169</address>
//!     <address-range from="13.66.140.128" to="13.66.140.143" />
//! </ip-filter>
//! ```
//!
//! At least one `<address>` or `<address-range>` is required. As a Gatehouse extension
//! `<address>` also takes CIDR notation (`10.0.0.0/8`). IPv4-mapped IPv6 addresses
//! (`::ffff:10.0.0.1`) match their IPv4 form. A refused caller gets `403` with
//! `{"statusCode":403,"message":"Forbidden"}`; the error reason is
//! `CallerIpNotAllowed` (allow list) or `CallerIpBlocked` (forbid list).

use std::net::IpAddr;

use http::StatusCode;
use ipnet::IpNet;

use crate::context::CompileContext;
use crate::document::{ElementReader, SectionKind};
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::pipeline::{Flow, PolicyResponse, StepMeta};
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<ip-filter>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    action: RawValue,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Address(RawValue),
    Range {
        from: RawValue,
        to: RawValue,
        position: Position,
    },
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let action = reader.required("action")?;
        reader.no_text()?;
        let mut entries = Vec::new();
        for child in &reader.element.children {
            let mut child_reader = reader.child(child);
            match child.name.as_str() {
                "address" => {
                    child_reader.no_children()?;
                    let Some(text) = child_reader.text() else {
                        return Err(reader.site.err(
                            child.position,
                            ErrorKind::Missing,
                            "<address> needs an IP address as its text",
                        ));
                    };
                    entries.push(Entry::Address(text));
                }
                "address-range" => {
                    let from = child_reader.required("from")?;
                    let to = child_reader.required("to")?;
                    child_reader.no_text()?;
                    child_reader.no_children()?;
                    entries.push(Entry::Range {
                        from,
                        to,
                        position: child.position,
                    });
                }
                _ => return Err(reader.unexpected_child(child, "<address> or <address-range>")),
            }
            child_reader.finish()?;
        }
        if entries.is_empty() {
            return Err(reader.site.err(
                reader.element.position,
                ErrorKind::Missing,
                "at least one <address> or <address-range> is required",
            ));
        }
        Ok(Self { action, entries })
    }
}

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpRange {
    V4(u32, u32),
    V6(u128, u128),
}

impl IpRange {
    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Self::V4(from, to), IpAddr::V4(ip)) => (from..=to).contains(&u32::from(ip)),
            (Self::V6(from, to), IpAddr::V6(ip)) => (from..=to).contains(&u128::from(ip)),
            _ => false,
        }
    }

    fn between(from: IpAddr, to: IpAddr) -> Option<Self> {
        match (from.to_canonical(), to.to_canonical()) {
            (IpAddr::V4(from), IpAddr::V4(to)) if from <= to => {
                Some(Self::V4(from.into(), to.into()))
            }
            (IpAddr::V6(from), IpAddr::V6(to)) if from <= to => {
                Some(Self::V6(from.into(), to.into()))
            }
            _ => None,
        }
    }
}

/// Compiled `<ip-filter>`.
#[derive(Debug)]
pub(crate) struct IpFilter {
    allow: bool,
    ranges: Box<[IpRange]>,
}

impl IpFilter {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let action = cx.literal(site, &config.action)?;
        let allow = match action.text.trim() {
            "allow" => true,
            "forbid" => false,
            _ => {
                return Err(site.invalid(
                    config.action.position,
                    format!(
                        "`action` must be `allow` or `forbid`, found {}",
                        action.shown()
                    ),
                ));
            }
        };
        let address = |raw: &RawValue| -> Result<IpAddr, PolicyError> {
            let resolved = cx.literal(site, raw)?;
            resolved.text.trim().parse::<IpAddr>().map_err(|_| {
                site.invalid(
                    raw.position,
                    format!("{} is not an IP address", resolved.shown()),
                )
            })
        };
        let mut ranges = Vec::with_capacity(config.entries.len());
        for entry in &config.entries {
            let range = match entry {
                Entry::Address(raw) => {
                    let resolved = cx.literal(site, raw)?;
                    let text = resolved.text.trim();
                    let (from, to) = if let Ok(network) = text.parse::<IpNet>() {
                        (network.network(), network.broadcast())
                    } else {
                        let ip = text.parse::<IpAddr>().map_err(|_| {
                            site.invalid(
                                raw.position,
                                format!(
                                    "{} is not an IP address or CIDR network",
                                    resolved.shown()
                                ),
                            )
                        })?;
                        (ip, ip)
                    };
                    IpRange::between(from, to)
                }
                Entry::Range { from, to, position } => {
                    IpRange::between(address(from)?, address(to)?)
                        .ok_or_else(|| {
                            site.invalid(
                        *position,
                        "`from` and `to` must be of the same IP family, with `from` not after `to`",
                    )
                        })?
                        .into()
                }
            };
            ranges.extend(range);
        }
        Ok(Self {
            allow,
            ranges: ranges.into_boxed_slice(),
        })
    }

    /// Checks the client address.
    pub(crate) fn check(&self, client_ip: IpAddr, meta: &StepMeta, section: SectionKind) -> Flow {
        let ip = client_ip.to_canonical();
        let listed = self.ranges.iter().any(|range| range.contains(ip));
        match (self.allow, listed) {
            (true, true) | (false, false) => Flow::Continue,
            (true, false) => meta.fail(
                section,
                "CallerIpNotAllowed",
                format!("Caller IP address {ip} is not allowed. Access denied."),
                forbidden(),
            ),
            (false, true) => meta.fail(
                section,
                "CallerIpBlocked",
                "Caller IP address is blocked. Access denied.",
                forbidden(),
            ),
        }
    }
}

fn forbidden() -> PolicyResponse {
    PolicyResponse::json_error(StatusCode::FORBIDDEN, "Forbidden")
}

impl PolicyDefinition for IpFilter {
    const NAME: &'static str = "ip-filter";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for IpFilter {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        self.check(run.exec.facts.client_ip, meta, run.section())
    }
}

#[cfg(test)]
#[path = "ip_filter_tests.rs"]
mod tests;
