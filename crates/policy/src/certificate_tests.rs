use super::*;
use crate::test_util::certificate_pem as pem;

#[test]
fn thumbprints_are_uppercase_sha1_hex() {
    // FIPS 180 test vector.
    assert_eq!(
        ClientCertificate::thumbprint_of(b"abc"),
        "A9993E364706816ABA3E25717850C26C9CD0D89D"
    );
}

#[test]
fn pem_thumbprint_takes_the_first_certificate_block() {
    let der = vec![0x30_u8; 100];
    let expected = ClientCertificate::thumbprint_of(&der);
    assert_eq!(pem_thumbprint(&pem(&der)), Some(expected.clone()));
    // Text around blocks, CRLF line ends and a second block (an intermediate).
    let chain = format!(
        "Bag Attributes\r\n{}{}",
        pem(&der).replace('\n', "\r\n"),
        pem(b"intermediate")
    );
    assert_eq!(pem_thumbprint(&chain), Some(expected));
    assert_eq!(pem_thumbprint(""), None);
    assert_eq!(
        pem_thumbprint("-----BEGIN CERTIFICATE-----\nAAAA\n"),
        None,
        "never closed"
    );
    assert_eq!(
        pem_thumbprint("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
        None,
        "not base64"
    );
    assert_eq!(
        pem_thumbprint("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
        None,
        "empty"
    );
}

#[test]
fn thumbprints_and_serials_are_normalised() {
    let upper = "5E7FC1A1F7AD302EDFBFB0B87C5AF2A299B72858";
    for written in [
        upper,
        "5e7fc1a1f7ad302edfbfb0b87c5af2a299b72858",
        "5e 7f c1 a1 f7 ad 30 2e df bf b0 b8 7c 5a f2 a2 99 b7 28 58",
        "5E:7F:C1:A1:F7:AD:30:2E:DF:BF:B0:B8:7C:5A:F2:A2:99:B7:28:58",
        "\u{200E}5E7FC1A1F7AD302EDFBFB0B87C5AF2A299B72858",
    ] {
        assert_eq!(
            normalize_thumbprint(written).as_deref(),
            Some(upper),
            "{written}"
        );
    }
    for wrong in ["", "5E7F", &format!("{upper}00"), &upper.replace('5', "G")] {
        assert_eq!(normalize_thumbprint(wrong), None, "{wrong}");
    }

    assert_eq!(normalize_serial("00:a1:B2").as_deref(), Some("A1B2"));
    assert_eq!(normalize_serial("A1B2").as_deref(), Some("A1B2"));
    assert_eq!(normalize_serial("0000").as_deref(), Some("0"));
    assert_eq!(normalize_serial(""), None);
    assert_eq!(normalize_serial("12-34"), None);
}

#[test]
fn names_compare_ignoring_case_and_spacing() {
    assert_eq!(normalize_name("  Client   01 "), "client 01");
    assert_eq!(normalize_name("ÉTÉ"), "été");
}

#[test]
fn distinguished_names_compare_as_sets_of_attributes() {
    let dn = |text: &str| DistinguishedName::parse(text).unwrap();
    let reference = dn(r#"CN=*.contoso.com, O="Contoso, Inc.", L=Chicago, ST=Illinois, C=US"#);
    for same in [
        // APIM's documentation writes the least specific attribute first.
        r#"C=US, ST=Illinois, L=Chicago, O="Contoso, Inc.", CN=*.contoso.com"#,
        // RFC 4514 escapes instead of quotes, no spaces.
        r"CN=*.contoso.com,O=Contoso\, Inc.,L=Chicago,ST=Illinois,C=US",
        r"CN=*.contoso.com,O=Contoso\2C Inc.,L=Chicago,ST=Illinois,C=US",
        // .NET's `S` for the state, case, `;` separators, extra spaces.
        r#"cn=*.CONTOSO.com ; o = "contoso,  inc." ; l=chicago; S=Illinois; c=us"#,
        // OIDs.
        r#"OID.2.5.4.3=*.contoso.com, 2.5.4.10="Contoso, Inc.", L=Chicago, ST=Illinois, C=US"#,
    ] {
        assert_eq!(dn(same), reference, "{same}");
    }
    for different in [
        r#"CN=*.contoso.com, O="Contoso, Inc.", L=Chicago, ST=Illinois"#,
        r#"CN=*.contoso.com, O="Contoso, Inc.", L=Chicago, ST=Illinois, C=US, C=US"#,
        r#"CN=www.contoso.com, O="Contoso, Inc.", L=Chicago, ST=Illinois, C=US"#,
        r#"CN=*.contoso.com, OU="Contoso, Inc.", L=Chicago, ST=Illinois, C=US"#,
    ] {
        assert_ne!(dn(different), reference, "{different}");
    }
    // Quotes inside quotes, escaped specials, UTF-8 escapes, trailing escaped space,
    // a multi-valued RDN.
    assert_eq!(
        dn(r#"CN="say ""hi"" \"there\"""#),
        dn(r#"CN=say \"hi\" \"there\""#)
    );
    assert_eq!(dn(r"CN=caf\C3\A9"), dn("CN=café"));
    assert_eq!(dn(r"CN=a\+b\=c"), dn(r#"CN="a+b=c""#));
    assert_eq!(dn("CN=a+OU=b, O=c"), dn("O=c, OU=b, CN=a"));
    assert_eq!(
        dn("E=admin@contoso.com, CN=a"),
        dn("emailAddress=admin@contoso.com, CN=a")
    );
}

#[test]
fn malformed_distinguished_names_say_why() {
    for (text, why) in [
        ("", "empty"),
        ("   ", "empty"),
        ("client", "has no `=`"),
        ("CN=a, O", "has no `=`"),
        ("CN=a,", "nothing follows"),
        ("=a", "not an attribute type"),
        ("C N=a", "not an attribute type"),
        ("CN=a,,O=b", "not an attribute type"),
        (r#"CN="open"#, "never closed"),
        (r#"CN="a" b"#, "after a quoted value"),
        (r#"CN=a"b"#, "must be escaped"),
        (r"CN=a\", "lone"),
        (r"CN=a\4", "not an escape"),
        (r"CN=\FF", "not UTF-8"),
    ] {
        let error = DistinguishedName::parse(text).unwrap_err();
        assert!(error.contains(why), "{text}: {error}");
    }
}
