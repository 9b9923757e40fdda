//! Property tests: no document makes the reader, the structure checks or the compiler
//! panic, whatever the text: random text, and real documents with random edits
//! (`cargo test -p gatehouse-policy proptest`; more cases with `PROPTEST_CASES=100000`).

use proptest::prelude::*;

use crate::{CompileContext, NamedValues, check};

/// Documents that load, to mutate: every policy Gatehouse has, expressions and all.
const SEEDS: &[&str] = &[
    r#"<policies><inbound><base /><set-variable name="t" value="@(context.Request.Headers.GetValueOrDefault("X-T", "a"))" /><choose><when condition="@((string)context.Variables["t"] == "a")"><set-header name="X" exists-action="override"><value>@("v" + 1)</value></set-header></when><otherwise><return-response><set-status code="403" reason="No" /><set-body>{"a":1}</set-body></return-response></otherwise></choose><rate-limit-by-key calls="5" renewal-period="60" counter-key="@(context.Request.IpAddress)" /><ip-filter action="allow"><address-range from="10.0.0.1" to="10.0.0.9" /></ip-filter><cors><allowed-origins><origin>*</origin></allowed-origins></cors></inbound><backend><forward-request timeout="10" /></backend><outbound><set-header name="Y" exists-action="delete" /><trace source="s"><message>m</message></trace></outbound><on-error><set-status code="500" /></on-error></policies>"#,
    "\u{feff}<policies>\r\n  <inbound>\r\n    <rewrite-uri template=\"/v2/{id}?x=1\" />\r\n    <set-query-parameter name=\"a\" exists-action=\"append\"><value>1</value></set-query-parameter>\r\n    <limit-concurrency key=\"k\" max-count=\"2\"><set-method>POST</set-method></limit-concurrency>\r\n  </inbound>\r\n</policies>\r\n",
    "<fragment><set-header name=\"a\"><value>@{ var x = 1; return x.ToString(); }</value></set-header></fragment>",
];

/// A seed with `edits` applied: each (position, kind, byte) inserts, deletes or replaces
/// one character.
fn mutated() -> impl Strategy<Value = String> {
    let edits = proptest::collection::vec((any::<usize>(), 0u8..3, any::<char>()), 0..8);
    (proptest::sample::select(SEEDS), edits).prop_map(|(seed, edits)| {
        let mut chars: Vec<char> = seed.chars().collect();
        for (at, kind, character) in edits {
            let at = at % (chars.len() + 1);
            match kind {
                0 => chars.insert(at, character),
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                _ if at < chars.len() => chars[at] = character,
                _ => chars.push(character),
            }
        }
        chars.into_iter().collect()
    })
}

fn exercise(xml: &str) {
    let named = NamedValues::new();
    let _ = check("proptest", xml, &CompileContext::new(&named));
    let _ = crate::parse("proptest", xml);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_text_is_refused_or_read_never_a_panic(xml in any::<String>()) {
        exercise(&xml);
    }

    #[test]
    fn edited_real_documents_never_panic(xml in mutated()) {
        exercise(&xml);
    }

    #[test]
    fn markup_soup_never_panics(parts in proptest::collection::vec(proptest::sample::select(&[
        "<policies>", "</policies>", "<inbound>", "</inbound>", "<base />", "<choose>", "</choose>",
        "<when condition=\"@(true)\">", "</when>", "<otherwise>", "</otherwise>", "<set-header name=\"a\">",
        "</set-header>", "<value>", "</value>", "@(", ")", "@{", "}", "\"", "&quot;", "<![CDATA[", "]]>",
        "<!-- c -->", "{{nv}}", "text", "<set-variable name=\"v\" value=\"@(1)\" />",
    ][..]), 0..40)) {
        exercise(&parts.concat());
    }
}
