#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn err(source: &str) -> (u32, u32, String) {
    let e = parse_expression(source).unwrap_err();
    (e.line, e.column, e.message)
}

fn block_err(source: &str) -> (u32, u32, String) {
    let e = parse_block(source).unwrap_err();
    (e.line, e.column, e.message)
}

#[test]
fn unclosed_call_names_the_method_and_where_it_opened() {
    let source = r#"context.Request.Headers.GetValueOrDefault("a", "b""#;
    assert_eq!(
        err(source),
        (
            1,
            51,
            "expected `)` to close the call of `GetValueOrDefault` opened at 1:42, found the end of the expression"
                .to_owned()
        )
    );
}

#[test]
fn unbalanced_parentheses() {
    assert_eq!(
        err("(1 + 2"),
        (
            1,
            7,
            "expected `)` to close the parenthesis opened at 1:1, found the end of the expression"
                .to_owned()
        )
    );
    assert_eq!(
        err("(1 + 2))"),
        (
            1,
            8,
            "expected the end of the expression, found `)`".to_owned()
        )
    );
    assert_eq!(
        err("a[1"),
        (
            1,
            4,
            "expected `]` to close the index opened at 1:2, found the end of the expression"
                .to_owned()
        )
    );
}

#[test]
fn unknown_token() {
    assert_eq!(err("1 # 2"), (1, 3, "unexpected character `#`".to_owned()));
    assert_eq!(err("\"abc"), (1, 1, "unterminated string".to_owned()));
    assert_eq!(err("\"\\q\""), (1, 3, "unknown escape `\\q`".to_owned()));
}

#[test]
fn missing_operand_and_ternary_colon() {
    assert_eq!(
        err("1 +"),
        (
            1,
            4,
            "expected an expression, found the end of the expression".to_owned()
        )
    );
    assert_eq!(
        err("a ? b"),
        (
            1,
            6,
            "expected `:` of the `?` at 1:3, found the end of the expression".to_owned()
        )
    );
    assert_eq!(
        err("x is Foo").2,
        "expected a type name (one of string, int, long, double, bool, decimal, JObject, JArray, JToken, IResponse, IRequest, object, DateTime, DateTimeOffset, TimeSpan, Guid, Uri, Jwt, BasicAuthCredentials), found `Foo`"
    );
}

#[test]
fn errors_on_later_lines() {
    assert_eq!(
        block_err("{\n  var x = 1\n  return x;\n}"),
        (
            3,
            3,
            "expected `;` after the declaration, found `return`".to_owned()
        )
    );
    assert_eq!(
        block_err("{ return 1;"),
        (
            1,
            12,
            "expected `}` to close the block opened at 1:1, found the end of the expression"
                .to_owned()
        )
    );
    assert_eq!(
        block_err("if (true return 1;").2,
        "expected `)` to close the condition of `if` opened at 1:4, found `return`"
    );
    assert_eq!(
        err("$\"a{1 +}\"").2,
        "expected an expression, found the end of the expression"
    );
    assert_eq!(
        err("$\"a{}\"").2,
        "expected an expression in the interpolation hole, found the end of the expression"
    );
    assert_eq!(
        err("$\"a}\"").2,
        "a `}` in an interpolated string must be doubled"
    );
}

#[test]
fn precedence_shapes_the_tree() {
    let e = parse_expression("a || b && c == d + e * f").unwrap();
    let ExprKind::Binary {
        op: BinaryOp::Or,
        right,
        ..
    } = e.kind
    else {
        panic!("{e:?}")
    };
    let ExprKind::Binary {
        op: BinaryOp::And,
        right,
        ..
    } = right.kind
    else {
        panic!()
    };
    let ExprKind::Binary {
        op: BinaryOp::Eq,
        right,
        ..
    } = right.kind
    else {
        panic!()
    };
    let ExprKind::Binary {
        op: BinaryOp::Add,
        right,
        ..
    } = right.kind
    else {
        panic!()
    };
    assert!(matches!(
        right.kind,
        ExprKind::Binary {
            op: BinaryOp::Mul,
            ..
        }
    ));

    // `??` is right-associative and binds looser than `||`
    let e = parse_expression("a ?? b ?? c").unwrap();
    let ExprKind::Binary {
        op: BinaryOp::Coalesce,
        left,
        right,
    } = e.kind
    else {
        panic!()
    };
    assert!(matches!(left.kind, ExprKind::Name(_)));
    assert!(matches!(
        right.kind,
        ExprKind::Binary {
            op: BinaryOp::Coalesce,
            ..
        }
    ));
}

#[test]
fn generic_calls_casts_lambdas_and_spans() {
    let e = parse_expression(r#"context.Variables.GetValueOrDefault<string>("x", "d")"#).unwrap();
    let ExprKind::MethodCall {
        method,
        type_argument,
        args,
        ..
    } = e.kind
    else {
        panic!()
    };
    assert_eq!(
        (method.as_str(), type_argument.as_deref(), args.len()),
        ("GetValueOrDefault", Some("string"), 2)
    );

    let e = parse_expression("(JObject)x").unwrap();
    assert!(matches!(e.kind, ExprKind::Cast { ref type_name, .. } if type_name == "JObject"));
    // not a cast: `x` is not a type name
    assert!(matches!(
        parse_expression("(x)").unwrap().kind,
        ExprKind::Name(_)
    ));
    // `a < b > (c)` is a comparison chain, not a generic call of a non-method
    assert!(parse_expression("a < b").is_ok());

    let e = parse_expression("items.Where((a, b) => a > b)").unwrap();
    let ExprKind::MethodCall { args, .. } = e.kind else {
        panic!()
    };
    assert!(
        matches!(&args[0].value.kind, ExprKind::Lambda { params, .. } if params == &["a", "b"])
    );

    let e = parse_expression("x.As<JObject>(preserveContent: true)").unwrap();
    let ExprKind::MethodCall { args, .. } = e.kind else {
        panic!()
    };
    assert_eq!(args[0].name.as_deref(), Some("preserveContent"));

    let e = parse_expression("1 +\n  foo.Bar").unwrap();
    let ExprKind::Binary { right, .. } = e.kind else {
        panic!()
    };
    assert_eq!((right.span.line, right.span.column), (2, 3));
    assert_eq!(
        &"1 +\n  foo.Bar"[right.span.start..right.span.end],
        "foo.Bar"
    );
}

#[test]
fn statements() {
    let stmts = parse_block("var x = 1; x += 2; if (x > 1) { return x; } else return 0;").unwrap();
    assert_eq!(stmts.len(), 3);
    assert!(matches!(stmts[1].kind, StmtKind::Assign { .. }));
    assert!(matches!(
        stmts[2].kind,
        StmtKind::If {
            otherwise: Some(_),
            ..
        }
    ));
    let stmts = parse_block("{ foreach (var h in xs) { n = n + h; } return n; }").unwrap();
    let StmtKind::Block(inner) = &stmts[0].kind else {
        panic!()
    };
    assert!(matches!(inner[0].kind, StmtKind::Foreach { ref name, .. } if name == "h"));
}

#[test]
fn absurd_nesting_fails_to_load_instead_of_exhausting_the_stack() {
    for source in [
        format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("{}true", "!".repeat(10_000)),
        format!("{}1", "-".repeat(10_000)),
    ] {
        let error = parse_expression(&source).unwrap_err();
        assert!(error.to_string().contains("nested more than"), "{error}");
    }
    let blocks = format!("{}return 1;{}", "{".repeat(10_000), "}".repeat(10_000));
    assert!(
        parse_block(&blocks)
            .unwrap_err()
            .to_string()
            .contains("nested more than")
    );
    let interpolated = format!("{}1{}", "$\"{".repeat(50), "}\"".repeat(50));
    let error = parse_expression(&interpolated).unwrap_err();
    assert!(error.to_string().contains("nested more than"), "{error}");
    // Reasonable nesting loads.
    parse_expression(&format!("{}1{}", "(".repeat(50), ")".repeat(50))).unwrap();
}

/// The operator and operands of a binary node, as text, for shape checks.
fn shape(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Binary { op, left, right } => {
            format!("({} {} {})", shape(left), op.as_str(), shape(right))
        }
        ExprKind::Name(n) => n.clone(),
        ExprKind::Member { object, name, .. } => format!("{}.{name}", shape(object)),
        ExprKind::Literal(Literal::Int(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn the_pipe_binds_between_equality_and_and() {
    assert_eq!(
        shape(&parse_expression("a == b | c && d").unwrap()),
        "(((a == b) | c) && d)"
    );
    assert_eq!(
        shape(&parse_expression("RegexOptions.IgnoreCase | RegexOptions.Multiline | 4").unwrap()),
        "((RegexOptions.IgnoreCase | RegexOptions.Multiline) | 4)"
    );
    assert_eq!(
        shape(&parse_expression("1 | 2 + 3").unwrap()),
        "(1 | (2 + 3))"
    );
    assert_eq!(
        err("1 |").2,
        "expected an expression, found the end of the expression"
    );
}

#[test]
fn namespace_qualified_types_stand_for_their_short_names() {
    assert_eq!(
        shape(&parse_expression("System.Text.Encoding.UTF8").unwrap()),
        "Encoding.UTF8"
    );
    assert_eq!(
        shape(&parse_expression("Newtonsoft.Json.Formatting.None").unwrap()),
        "Formatting.None"
    );
    // the longest known name wins; a name that is not one stays as written
    assert_eq!(
        shape(&parse_expression("System.Text.RegularExpressions.RegexOptions.None").unwrap()),
        "RegexOptions.None"
    );
    assert_eq!(
        shape(&parse_expression("System.IO.File").unwrap()),
        "System.IO.File"
    );
    let ExprKind::New { type_name, .. } = parse_expression("new System.Uri(\"x\")").unwrap().kind
    else {
        panic!()
    };
    assert_eq!(type_name, "Uri");
    let e = parse_expression("System.Uri.EscapeDataString(\"x\")").unwrap();
    assert_eq!((e.span.start, e.span.end), (0, 32));
}

#[test]
fn out_arguments_and_using() {
    let ExprKind::MethodCall { args, .. } =
        parse_expression("int.TryParse(s, out var n)").unwrap().kind
    else {
        panic!()
    };
    assert_eq!(
        args[1].value.kind,
        ExprKind::Out {
            name: "n".to_owned(),
            declare: true
        }
    );
    let ExprKind::MethodCall { args, .. } =
        parse_expression("s.TryParseJwt(out Jwt t)").unwrap().kind
    else {
        panic!()
    };
    assert!(matches!(&args[0].value.kind, ExprKind::Out { name, declare: true } if name == "t"));
    let ExprKind::MethodCall { args, .. } =
        parse_expression("int.TryParse(s, out n)").unwrap().kind
    else {
        panic!()
    };
    assert!(matches!(
        &args[1].value.kind,
        ExprKind::Out { declare: false, .. }
    ));
    assert_eq!(
        err("f.TryParse(s, out)").2,
        "expected the name of the `out` variable, found `)`"
    );
    let stmts = parse_block("using (var h = x) { return h; }").unwrap();
    let StmtKind::Block(inner) = &stmts[0].kind else {
        panic!("{stmts:?}")
    };
    assert!(matches!(&inner[0].kind, StmtKind::Var { name, .. } if name == "h"));
    assert_eq!(
        block_err("using (h) { return h; }").2,
        "expected a type name (one of string, int, long, double, bool, decimal, JObject, JArray, JToken, IResponse, IRequest, object, DateTime, DateTimeOffset, TimeSpan, Guid, Uri, Jwt, BasicAuthCredentials), found `h`"
    );
}
