use super::*;

fn expressions(src: &str) -> Vec<&str> {
    let scanned = prescan(src).unwrap();
    scanned
        .expressions
        .iter()
        .map(|span| &src[span.start..span.end])
        .collect()
}

#[test]
fn prescan_finds_balanced_expressions() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("plain text has none", "<a b=\"c\">d</a>", &[]),
        ("email is not code", "<a>me@example.com</a>", &[]),
        (
            "nested parens",
            "<a v=\"@(f(g(1), (2)))\"/>",
            &["@(f(g(1), (2)))"],
        ),
        (
            "quotes inside quoted attribute",
            r#"<set-header value="@(context.Request.Headers.GetValueOrDefault("x",""))"/>"#,
            &[r#"@(context.Request.Headers.GetValueOrDefault("x",""))"#],
        ),
        (
            "string containing a paren",
            r#"<a>@("(" + ")")</a>"#,
            &[r#"@("(" + ")")"#],
        ),
        (
            "escaped quote in string",
            r#"<a>@("a\")b")</a>"#,
            &[r#"@("a\")b")"#],
        ),
        (
            "verbatim string",
            r#"<a>@(@"c:\x"")" + 1)</a>"#,
            &[r#"@(@"c:\x"")" + 1)"#],
        ),
        (
            "char literals",
            r"<a>@(')' == '\'' || '(' == 'x')</a>",
            &[r"@(')' == '\'' || '(' == 'x')"],
        ),
        (
            "raw < and && in code",
            "<a>@(x < 3 && y.As<JObject>() != null)</a>",
            &["@(x < 3 && y.As<JObject>() != null)"],
        ),
        (
            "block with braces and strings",
            r#"<a>@{ var s = "}"; if (a) { return "{"; } return s; }</a>"#,
            &[r#"@{ var s = "}"; if (a) { return "{"; } return s; }"#],
        ),
        (
            "interpolated string with hole and quotes",
            r#"<a>@($"{d["k)"]} and {{x}}")</a>"#,
            &[r#"@($"{d["k)"]} and {{x}}")"#],
        ),
        (
            "xml inside a string in a block",
            r#"<set-body>@{ return "<a href=\"x\">)</a>"; }</set-body>"#,
            &[r#"@{ return "<a href=\"x\">)</a>"; }"#],
        ),
        (
            "comments in code",
            "<a>@{ // ) }\n /* } */ return 1; }</a>",
            &["@{ // ) }\n /* } */ return 1; }"],
        ),
        (
            "entity-quoted string containing a paren",
            "<a v=\"@(&quot;)&quot; + x)\"/>",
            &["@(&quot;)&quot; + x)"],
        ),
        (
            "xml comments are skipped",
            "<!-- @( --><a>@(1)</a>",
            &["@(1)"],
        ),
        (
            "two expressions",
            "<a b=\"@(1)\">@(2)</a>",
            &["@(1)", "@(2)"],
        ),
        ("multi-byte text around", "<a b=\"é@('é')ü\"/>", &["@('é')"]),
    ];
    for (name, src, want) in cases {
        assert_eq!(&expressions(src), want, "{name}");
    }
}

#[test]
fn prescan_reports_unterminated_expressions_at_their_start() {
    let cases = [
        ("missing paren", "<a>\n  @(f(1)</a>", 6, "missing `)`"),
        ("missing brace", "<a>@{ x; </a>", 3, "missing `}`"),
        (
            "open string",
            r#"<a>@("abc)</a>"#,
            3,
            "string literal is not closed",
        ),
        (
            "open comment",
            "<a>@{ /* x }</a>",
            3,
            "comment is not closed",
        ),
    ];
    for (name, src, offset, message) in cases {
        let error = prescan(src).unwrap_err();
        assert_eq!(error.offset, offset, "{name}");
        assert!(error.message.contains(message), "{name}: {}", error.message);
    }
}

#[test]
fn read_builds_tree_with_positions() {
    let xml = "<policies>\n  <inbound>\n    <set-header name=\"x\" exists-action=\"skip\">\n      <value>v &amp; w</value>\n    </set-header>\n  </inbound>\n</policies>";
    let root = read("test", xml).unwrap();
    assert_eq!(root.name, "policies");
    assert_eq!(root.position, Position::new(1, 1));
    let inbound = &root.children[0];
    assert_eq!(inbound.position, Position::new(2, 3));
    let header = &inbound.children[0];
    assert_eq!(header.position, Position::new(3, 5));
    assert_eq!(header.attributes[0].name, "name");
    assert_eq!(header.attributes[0].position, Position::new(3, 17));
    assert_eq!(header.attributes[1].position, Position::new(3, 26));
    assert_eq!(header.attributes[0].value.literal(), Some("x"));
    let value = &header.children[0];
    assert_eq!(value.text.as_ref().unwrap().literal(), Some("v & w"));
    assert_eq!(value.text.as_ref().unwrap().position, Position::new(4, 14));
}

#[test]
fn positions_after_expressions_map_back_to_the_original_text() {
    let xml = "<a x=\"@(\"))))\")\" y=\"1\">\n<b z=\"@{ return 1; }\" w=\"2\"/></a>";
    let root = read("test", xml).unwrap();
    assert_eq!(root.attributes[1].position, Position::new(1, 18));
    let b = &root.children[0];
    assert_eq!(b.position, Position::new(2, 1));
    assert_eq!(b.attributes[1].position, Position::new(2, 23));
    match &root.attributes[0].value.text {
        RawText::Expression(expression) => {
            assert_eq!(expression.source, "@(\"))))\")");
            assert_eq!(expression.single(), Some("\"))))\""));
            assert_eq!(expression.position, Position::new(1, 7));
        }
        other => panic!("expected an expression, got {other:?}"),
    }
}

#[test]
fn values_are_classified() {
    let root = read(
        "t",
        "<a p=\"lit {{nv}}\" q=\" @(1) \" r=\"Bearer @(x)\">@{ return 1; }</a>",
    )
    .unwrap();
    assert!(
        matches!(&root.attributes[0].value.text, RawText::Literal(text) if text == "lit {{nv}}")
    );
    assert!(matches!(
        &root.attributes[1].value.text,
        RawText::Expression(_)
    ));
    assert!(matches!(&root.attributes[2].value.text, RawText::Mixed(_)));
    assert!(
        matches!(&root.text.as_ref().unwrap().text, RawText::Expression(e) if e.single().is_none())
    );
}

#[test]
fn comments_cdata_and_references_are_handled() {
    let root = read(
        "t",
        "<?xml version=\"1.0\"?><!-- c --><a><!-- inner --><![CDATA[<x>&]]>&#65;&#x42;</a>",
    )
    .unwrap();
    assert_eq!(root.text.unwrap().literal(), Some("<x>&AB"));
}

#[test]
fn read_rejects_broken_documents_with_positions() {
    let cases = [
        ("mismatched end", "<a>\n<b></c></a>", 2, "invalid XML"),
        ("unclosed", "<a><b>", 1, "not closed"),
        ("two roots", "<a/><b/>", 1, "exactly one root"),
        ("text outside", "<a/>x", 1, "text outside"),
        ("doctype", "<!DOCTYPE a><a/>", 1, "DOCTYPE"),
        ("unknown entity", "<a>&nbsp;</a>", 1, "entity"),
        ("empty", "  ", 1, "empty"),
        ("reserved char", "<a>\u{E000}</a>", 1, "reserved"),
        (
            "unterminated expression",
            "<a>\n\n @(x</a>",
            3,
            "missing `)`",
        ),
    ];
    for (name, xml, line, message) in cases {
        let error = read("doc.xml", xml).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Syntax, "{name}");
        assert_eq!(error.position.line, line, "{name}: {error}");
        assert!(error.message.contains(message), "{name}: {error}");
        assert!(error.to_string().starts_with("doc.xml:"), "{name}: {error}");
    }
}

#[test]
fn read_rejects_documents_too_deep_or_too_big() {
    let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
    assert!(read("t", &deep).unwrap_err().message.contains("nested"));
    let big = format!("<a>{}</a>", "x".repeat(MAX_DOCUMENT_BYTES));
    assert!(read("t", &big).unwrap_err().message.contains("bytes"));
    let nested_strings = format!("<a>@({}</a>", "$\"{".repeat(MAX_CODE_DEPTH + 2));
    assert!(read("t", &nested_strings).is_err());
}

#[test]
fn line_index_counts_characters() {
    let text = "ab\nçd\n\nx";
    let lines = LineIndex::new(text);
    assert_eq!(lines.position(0), Position::new(1, 1));
    assert_eq!(lines.position(3), Position::new(2, 1));
    assert_eq!(lines.position(5), Position::new(2, 2));
    assert_eq!(lines.position(4), Position::new(2, 1)); // inside `ç`: clamps to its start
    assert_eq!(lines.position(8), Position::new(4, 1));
    assert_eq!(lines.position(100), Position::new(4, 2));
}

#[test]
fn expression_code_is_unescaped_leniently() {
    assert_eq!(
        unescape_lenient("a(&quot;x&quot;) &amp;&amp; b &lt; c &#65;&#x42;"),
        "a(\"x\") && b < c AB"
    );
    assert_eq!(
        unescape_lenient("a && b & c &bogus; &#xZZ; &"),
        "a && b & c &bogus; &#xZZ; &"
    );
    let root = read("t", "<a v=\"@(f(&quot;x&quot;))\"/>").unwrap();
    match &root.attributes[0].value.text {
        RawText::Expression(expression) => assert_eq!(expression.single(), Some("f(\"x\")")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_real_world_apim_documents() {
    let documents = [
        r#"<policies>
    <inbound>
        <base />
        <choose>
            <when condition="@(context.Request.Headers.GetValueOrDefault("Authorization","").StartsWith("Bearer ") && context.Variables.ContainsKey("x"))">
                <set-variable name="token" value="@(context.Request.Headers.GetValueOrDefault("Authorization","").Substring(7))" />
            </when>
        </choose>
        <set-body>@{
            var body = context.Request.Body.As<JObject>(preserveContent: true);
            if (body["a"] != null && (int)body["a"] < 3) { body["note"] = "<b>bold</b> 'quoted' \"x\""; }
            return body.ToString();
        }</set-body>
        <set-header name="X-Trace" exists-action="override">
            <value>@($"{context.RequestId}-{context.Variables["x"]}")</value>
        </set-header>
    </inbound>
    <outbound>
        <return-response response-variable-name="existing">
            <set-body>@(((IResponse)context.Variables["r"]).Body.As<string>())</set-body>
        </return-response>
    </outbound>
</policies>"#,
        "<policies><inbound><rate-limit-by-key calls=\"10\" renewal-period=\"60\" counter-key=\"@(context.Request.IpAddress)\" increment-condition=\"@(context.Response.StatusCode >= 200 && context.Response.StatusCode < 300)\" /></inbound></policies>",
        "<policies>\r\n<inbound>\r\n<cors><allowed-origins><origin>*</origin></allowed-origins></cors>\r\n</inbound>\r\n</policies>",
    ];
    for (index, xml) in documents.iter().enumerate() {
        let root = read("real", xml).unwrap_or_else(|error| panic!("document {index}: {error}"));
        assert_eq!(root.name, "policies");
    }
    let root = read("real", documents[0]).unwrap();
    let inbound = &root.children[0];
    let set_body = &inbound.children[2];
    assert_eq!(set_body.name, "set-body");
    assert!(
        matches!(&set_body.text.as_ref().unwrap().text, RawText::Expression(e) if e.source.starts_with("@{") && e.source.ends_with('}'))
    );
    assert_eq!(inbound.children[3].position, Position::new(14, 9));
}
