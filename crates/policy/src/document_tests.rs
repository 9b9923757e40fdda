use super::*;
use crate::parse;
use crate::test_util::{ErrorCase, check_errors};

#[test]
fn parses_sections_and_base_markers() {
    let xml = "<policies>\n  <inbound>\n    <base />\n    <set-method>POST</set-method>\n  </inbound>\n  <outbound/>\n</policies>";
    let document = parse("api", xml).unwrap();
    assert_eq!(document.origin(), "api");
    assert!(!document.is_fragment());
    let inbound = document.section(SectionKind::Inbound).unwrap();
    assert_eq!(inbound.position(), Position::new(2, 3));
    assert_eq!(inbound.nodes().len(), 2);
    assert_eq!(inbound.nodes()[0], PolicyNode::Base(Position::new(3, 5)));
    let PolicyNode::Policy(policy) = &inbound.nodes()[1] else {
        panic!("expected a policy")
    };
    assert_eq!(policy.name(), "set-method");
    assert_eq!(policy.position(), Position::new(4, 5));
    assert_eq!(policy.origin(), "api");
    assert!(
        document
            .section(SectionKind::Outbound)
            .unwrap()
            .nodes()
            .is_empty()
    );
    assert!(document.section(SectionKind::Backend).is_none());
    assert!(document.section(SectionKind::OnError).is_none());
}

#[test]
fn accepts_the_id_attribute_on_every_policy() {
    let document = parse(
        "t",
        r#"<policies><inbound><set-method id="m1">GET</set-method></inbound></policies>"#,
    )
    .unwrap();
    let PolicyNode::Policy(policy) = &document.section(SectionKind::Inbound).unwrap().nodes()[0]
    else {
        panic!()
    };
    assert_eq!(policy.id.as_deref(), Some("m1"));
}

#[test]
fn rejects_bad_structure() {
    let cases = [
        ErrorCase {
            name: "duplicate base",
            section: "inbound",
            body: "<base/><base />",
            at: "<base />",
            kind: ErrorKind::Structure,
            message: "only one <base/>",
        },
        ErrorCase {
            name: "base with attribute",
            section: "inbound",
            body: r#"<base x="1"/>"#,
            at: "x=",
            kind: ErrorKind::UnknownAttribute,
            message: "takes no attributes",
        },
        ErrorCase {
            name: "base nested",
            section: "inbound",
            body: r#"<limit-concurrency key="k" max-count="1"><base/></limit-concurrency>"#,
            at: "<base/>",
            kind: ErrorKind::Structure,
            message: "only allowed directly inside",
        },
        ErrorCase {
            name: "text in section",
            section: "inbound",
            body: "hello",
            at: "hello",
            kind: ErrorKind::Structure,
            message: "unexpected text",
        },
        ErrorCase {
            name: "typo gets a suggestion",
            section: "inbound",
            body: r#"<set-heder name="x"/>"#,
            at: "<set-heder",
            kind: ErrorKind::UnknownElement,
            message: "did you mean <set-header>?",
        },
        ErrorCase {
            name: "unknown element",
            section: "outbound",
            body: "<frobnicate/>",
            at: "<frobnicate",
            kind: ErrorKind::UnknownElement,
            message: "unknown policy element",
        },
        ErrorCase {
            name: "apim policy not implemented",
            section: "inbound",
            body: r#"<cache-lookup vary-by-developer="false" vary-by-developer-groups="false"/>"#,
            at: "<cache-lookup",
            kind: ErrorKind::NotSupported,
            message: "policy `<cache-lookup>` is not supported yet by Gatehouse",
        },
        ErrorCase {
            name: "validate-azure-ad-token not implemented",
            section: "inbound",
            body: r#"<validate-azure-ad-token tenant-id="contoso.onmicrosoft.com"/>"#,
            at: "<validate-azure-ad-token",
            kind: ErrorKind::NotSupported,
            // Points a user at the documentation, not at the source tree.
            message: "not supported yet by Gatehouse; docs/policies.md lists what is",
        },
        ErrorCase {
            name: "include-fragment of an unknown fragment",
            section: "inbound",
            body: r#"<include-fragment fragment-id="f"/>"#,
            at: "fragment-id",
            kind: ErrorKind::UnknownFragment,
            message: "unknown policy fragment `f`",
        },
        ErrorCase {
            name: "unknown attribute lists the supported ones",
            section: "inbound",
            body: r#"<set-header name="a" bogus="1"/>"#,
            at: "bogus",
            kind: ErrorKind::UnknownAttribute,
            message: "unknown attribute `bogus`; supported: exists-action, id, name",
        },
        ErrorCase {
            name: "id must be literal",
            section: "inbound",
            body: r#"<set-method id="@(1)">GET</set-method>"#,
            at: "id=",
            kind: ErrorKind::NotSupported,
            message: "`id` attribute must be plain text",
        },
    ];
    check_errors(&cases);
}

#[test]
fn rejects_bad_roots_and_sections() {
    let cases: &[(&str, &str, ErrorKind, &str)] = &[
        (
            "wrong root",
            "<policy/>",
            ErrorKind::Structure,
            "root element must be <policies>",
        ),
        (
            "duplicate section",
            "<policies><inbound/><inbound/></policies>",
            ErrorKind::Structure,
            "appears twice",
        ),
        (
            "unknown section",
            "<policies><inbond/></policies>",
            ErrorKind::Structure,
            "expected a section",
        ),
        (
            "attribute on policies",
            "<policies x=\"1\"/>",
            ErrorKind::UnknownAttribute,
            "takes no attributes",
        ),
        (
            "text in policies",
            "<policies>x</policies>",
            ErrorKind::Structure,
            "unexpected text",
        ),
    ];
    for (name, xml, kind, message) in cases {
        let error = parse("t", xml).unwrap_err();
        assert_eq!(error.kind, *kind, "{name}: {error}");
        assert!(error.message.contains(message), "{name}: {error}");
    }
}

#[test]
fn reads_fragments() {
    let document = parse(
        "fragment",
        "<fragment><set-method>GET</set-method></fragment>",
    )
    .unwrap();
    assert!(document.is_fragment());
    let error = parse("fragment", "<fragment><base/></fragment>").unwrap_err();
    assert_eq!(error.kind, ErrorKind::Structure);
}

#[test]
fn every_implemented_policy_is_an_apim_policy() {
    for registration in crate::policies::REGISTRY {
        assert!(
            APIM_POLICIES.contains(&registration.name),
            "{}",
            registration.name
        );
    }
}

#[test]
fn docs_policies_md_has_a_section_for_each_policy_in_the_registry_and_no_other() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/policies.md"
    ))
    .unwrap();
    // `### `a` — sections` or, for policies documented together, `### `a`, `b` — ...`.
    let documented: Vec<&str> = docs
        .lines()
        .filter(|line| line.starts_with("### `"))
        .flat_map(|line| {
            let names = line.split(" — ").next().unwrap_or_default();
            names.split('`').skip(1).step_by(2)
        })
        .collect();
    let mut registered: Vec<&str> = crate::policies::REGISTRY
        .iter()
        .map(|registration| registration.name)
        .collect();
    registered.sort_unstable();
    let mut sorted = documented.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted, registered,
        "the policy headings of docs/policies.md"
    );
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("set-header", "set-header"), 0);
    assert_eq!(edit_distance("set-heder", "set-header"), 1);
    assert_eq!(edit_distance("cors", "cros"), 2);
    assert_eq!(edit_distance("", "abc"), 3);
}

#[test]
fn element_paths_number_siblings_from_one() {
    let mut path = String::new();
    for n in [1, 9, 10, 12, 305] {
        path.clear();
        super::push_decimal(&mut path, n);
        assert_eq!(path, n.to_string());
    }
}
