use super::*;
use crate::parse;

/// A document whose `section` holds one `<set-method>` per label (on its own line), and
/// `<base/>` where the label is `base`.
fn scope(origin: &str, section: Option<&str>, labels: &[&str]) -> PolicyDocument {
    let body: String = labels
        .iter()
        .map(|label| {
            if *label == "base" {
                "<base/>\n".to_owned()
            } else {
                format!("<set-method id=\"{label}\">GET</set-method>\n")
            }
        })
        .collect();
    let xml = match section {
        Some(section) => format!("<policies>\n<{section}>\n{body}</{section}>\n</policies>"),
        None => "<policies/>".to_owned(),
    };
    parse(origin, &xml).unwrap()
}

fn labels(scopes: &[&PolicyDocument]) -> Vec<String> {
    merge(scopes, SectionKind::Inbound)
        .iter()
        .map(|policy| policy.id.clone().unwrap())
        .collect()
}

type Scope = (Option<&'static str>, &'static [&'static str]);

#[test]
fn merges_scopes() {
    let cases: &[(&str, &[Scope], &[&str])] = &[
        (
            "base in the middle",
            &[
                (Some("inbound"), &["g1", "g2"]),
                (Some("inbound"), &["a1", "base", "a2"]),
            ],
            &["a1", "g1", "g2", "a2"],
        ),
        (
            "base first and last",
            &[
                (Some("inbound"), &["g"]),
                (Some("inbound"), &["base", "p"]),
                (Some("inbound"), &["a", "base"]),
            ],
            &["a", "g", "p"],
        ),
        (
            "no base drops the parent",
            &[(Some("inbound"), &["g"]), (Some("inbound"), &["a"])],
            &["a"],
        ),
        (
            "missing section inherits the parent whole",
            &[
                (Some("inbound"), &["g"]),
                (None, &[]),
                (Some("outbound"), &["x"]),
            ],
            &["g"],
        ),
        (
            "empty section without base clears",
            &[(Some("inbound"), &["g"]), (Some("inbound"), &[])],
            &[],
        ),
        (
            "base alone keeps the parent",
            &[(Some("inbound"), &["g"]), (Some("inbound"), &["base"])],
            &["g"],
        ),
        (
            "four levels",
            &[
                (Some("inbound"), &["g"]),
                (Some("inbound"), &["base", "p"]),
                (Some("inbound"), &["a", "base"]),
                (Some("inbound"), &["base", "o"]),
            ],
            &["a", "g", "p", "o"],
        ),
        (
            "base with no parent",
            &[(Some("inbound"), &["base", "o"])],
            &["o"],
        ),
        ("no scopes", &[], &[]),
    ];
    for (name, scopes, expected) in cases {
        let documents: Vec<PolicyDocument> = scopes
            .iter()
            .enumerate()
            .map(|(index, (section, labels))| scope(&format!("scope{index}"), *section, labels))
            .collect();
        let references: Vec<&PolicyDocument> = documents.iter().collect();
        assert_eq!(labels(&references), *expected, "{name}");
    }
}

#[test]
fn merged_policies_keep_their_own_origin() {
    let global = scope("global", Some("inbound"), &["g"]);
    let api = scope("api", Some("inbound"), &["base", "a"]);
    let merged = merge(&[&global, &api], SectionKind::Inbound);
    let origins: Vec<&str> = merged.iter().map(|policy| policy.origin()).collect();
    assert_eq!(origins, ["global", "api"]);
}
