use super::*;

mod properties;

/// A valid domain of exactly `n` octets: labels of `a` with a dot every tenth character.
fn domain_of_len(n: usize) -> String {
    (0..n)
        .map(|i| if i % 10 == 9 && i + 1 != n { '.' } else { 'a' })
        .collect()
}

fn mail(args: &str, utf8: bool) -> MailFrom {
    parse_mail_from(args, utf8).unwrap_or_else(|e| panic!("{args:?} (utf8={utf8}): {e:?}"))
}

fn rcpt(args: &str, utf8: bool) -> RcptTo {
    parse_rcpt_to(args, utf8).unwrap_or_else(|e| panic!("{args:?} (utf8={utf8}): {e:?}"))
}

fn keywords(params: &[EsmtpParam]) -> Vec<&str> {
    params.iter().map(|p| p.keyword.as_str()).collect()
}

#[test]
fn mail_valid_table() {
    // (args, utf8_allowed, expected address, expected parameter keywords)
    #[rustfmt::skip]
    let cases: &[(&str, bool, &str, &[&str])] = &[
        ("FROM:<a@b>", false, "a@b", &[]),
        ("from:<a@b>", false, "a@b", &[]),
        ("FrOm:<user@example.com>", false, "user@example.com", &[]),
        ("FROM: <a@b>", false, "a@b", &[]),
        ("FROM:   <a@b>", false, "a@b", &[]),
        (" FROM:<a@b>", false, "a@b", &[]),
        ("FROM:<a@b> ", false, "a@b", &[]),
        ("FROM:<a@b>   SIZE=10   BODY=8BITMIME  ", false, "a@b", &["SIZE", "BODY"]),
        ("FROM:<>", false, "", &[]),
        ("FROM:<> SIZE=0", false, "", &["SIZE"]),
        ("FROM:<\"john doe\"@example.com>", false, "\"john doe\"@example.com", &[]),
        ("FROM:<\"a\\\"b\"@example.com>", false, "\"a\\\"b\"@example.com", &[]),
        ("FROM:<\"a>b@c\"@example.com>", false, "\"a>b@c\"@example.com", &[]),
        ("FROM:<\"\"@example.com>", false, "\"\"@example.com", &[]),
        ("FROM:<\"\\\\\"@x>", false, "\"\\\\\"@x", &[]),
        ("FROM:<\" a  b \"@x> SIZE=1", false, "\" a  b \"@x", &["SIZE"]),
        ("FROM:<@a.example,@b.example:u@d.example>", false, "u@d.example", &[]),
        ("FROM:<@a.example:u@d.example> SIZE=5", false, "u@d.example", &["SIZE"]),
        ("FROM:<u@[192.0.2.1]>", false, "u@[192.0.2.1]", &[]),
        ("FROM:<u@[IPv6:2001:db8::1]>", false, "u@[IPv6:2001:db8::1]", &[]),
        ("FROM:<u@[ipv6:::1]>", false, "u@[ipv6:::1]", &[]),
        ("FROM:<u@[IPv6:::ffff:192.0.2.1]>", false, "u@[IPv6:::ffff:192.0.2.1]", &[]),
        ("FROM:<u@[IPv6:1:2:3:4:5:6::]>", false, "u@[IPv6:1:2:3:4:5:6::]", &[]),
        ("FROM:<u@[IPv6:1:2:3:4::192.0.2.1]>", false, "u@[IPv6:1:2:3:4::192.0.2.1]", &[]),
        ("FROM:<u@[IPv6:1:2:3:4:5:6:7:8]>", false, "u@[IPv6:1:2:3:4:5:6:7:8]", &[]),
        ("FROM:<u@[IPv6:1:2:3:4:5:6:192.0.2.1]>", false, "u@[IPv6:1:2:3:4:5:6:192.0.2.1]", &[]),
        ("FROM:<u@[x-tag:some@content]>", false, "u@[x-tag:some@content]", &[]),
        ("FROM:<first.last+tag@sub.example.co.uk>", false, "first.last+tag@sub.example.co.uk", &[]),
        ("FROM:<!#$%&'*+-/=?^_`{|}~@example.com>", false, "!#$%&'*+-/=?^_`{|}~@example.com", &[]),
        ("FROM:<a@1.2.3.4>", false, "a@1.2.3.4", &[]),
        ("FROM:<a@a-b--c.example>", false, "a@a-b--c.example", &[]),
        ("FROM:<A@EXAMPLE.COM>", false, "A@EXAMPLE.COM", &[]),
        ("FROM:<a@b> SMTPUTF8", false, "a@b", &["SMTPUTF8"]),
        ("FROM:<a@b> XFOO=bar X-Y-2 x9", false, "a@b", &["XFOO", "X-Y-2", "X9"]),
        ("FROM:<a@b> NOTIFY=NEVER ORCPT=rfc822;a@b", false, "a@b", &["NOTIFY", "ORCPT"]),
        ("FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8", true, "δοκιμή@παράδειγμα.δοκιμή", &["SMTPUTF8"]),
        ("FROM:<\"ü x\"@example.com> SMTPUTF8", true, "\"ü x\"@example.com", &["SMTPUTF8"]),
        ("FROM:<a@b> SMTPUTF8 XVAL=ü", true, "a@b", &["SMTPUTF8", "XVAL"]),
        ("FROM:<a@b> SIZE=1 BODY=7BIT SMTPUTF8 RET=HDRS ENVID=x AUTH=<>", true, "a@b",
            &["SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH"]),
    ];
    for &(args, utf8, address, kws) in cases {
        let m = mail(args, utf8);
        assert_eq!(m.address, address, "{args:?}");
        assert_eq!(keywords(&m.params), kws, "{args:?}");
        assert_eq!(m.is_null_sender(), address.is_empty(), "{args:?}");
    }
}

#[test]
fn mail_invalid_table() {
    let long_envid = format!("FROM:<a@b> ENVID={}", "x".repeat(101));
    // (args, utf8_allowed, basic code, enhanced code)
    let cases: &[(&str, bool, u16, &str)] = &[
        ("", false, 501, "5.5.4"),
        ("FROM", false, 501, "5.5.4"),
        ("FROM :<a@b>", false, 501, "5.5.4"),
        ("FROM<a@b>", false, 501, "5.5.4"),
        ("TO:<a@b>", false, 501, "5.5.4"),
        ("FROM:", false, 501, "5.5.4"),
        ("FROM:   ", false, 501, "5.5.4"),
        ("FROM:a@b", false, 501, "5.5.4"),
        ("FROM:a@b SIZE=1", false, 501, "5.5.4"),
        ("FROM:\t<a@b>", false, 501, "5.5.4"),
        ("FROM:<a@b>>", false, 501, "5.5.4"),
        ("FROM:<a@b>SIZE=1", false, 501, "5.5.4"),
        ("FROM:<a@b>\tSIZE=1", false, 501, "5.5.4"),
        ("FROM:<a@b> SIZE=1\t", false, 501, "5.5.4"),
        ("FROM:<a@b>\r\n", false, 501, "5.5.4"),
        ("FROM:<a@b", false, 501, "5.1.7"),
        ("FROM:<a b@c>", false, 501, "5.1.7"),
        ("FROM:<a..b@c>", false, 501, "5.1.7"),
        ("FROM:<.a@c>", false, 501, "5.1.7"),
        ("FROM:<a.@c>", false, 501, "5.1.7"),
        ("FROM:<@c>", false, 501, "5.1.7"),
        ("FROM:<a@>", false, 501, "5.1.7"),
        ("FROM:<a>", false, 501, "5.1.7"),
        ("FROM:<a@b.>", false, 501, "5.1.7"),
        ("FROM:<a@.b>", false, 501, "5.1.7"),
        ("FROM:<a@b..c>", false, 501, "5.1.7"),
        ("FROM:<a@-b.c>", false, 501, "5.1.7"),
        ("FROM:<a@b-.c>", false, 501, "5.1.7"),
        ("FROM:<a@b_c.d>", false, 501, "5.1.7"),
        ("FROM:<a@b@c>", false, 501, "5.1.7"),
        ("FROM:<a@b c>", false, 501, "5.1.7"),
        ("FROM:<postmaster>", false, 501, "5.1.7"),
        ("FROM:<Postmaster>", false, 501, "5.1.7"),
        ("FROM:<\"unterminated@b>", false, 501, "5.1.7"),
        ("FROM:<\"a\"b@c>", false, 501, "5.1.7"),
        ("FROM:<\"a b\" @x>", false, 501, "5.1.7"),
        ("FROM:<\"a\0b\"@c>", false, 501, "5.1.7"),
        ("FROM:<\"a\tb\"@c>", false, 501, "5.1.7"),
        ("FROM:<\"a\\\tb\"@c>", false, 501, "5.1.7"),
        ("FROM:<a\0@b>", false, 501, "5.1.7"),
        ("FROM:<a@b\x7f>", false, 501, "5.1.7"),
        ("FROM:<a@b\r\n>", false, 501, "5.1.7"),
        ("FROM:<\"a\\é\"@b> SMTPUTF8", true, 501, "5.1.7"),
        ("FROM:<a\u{85}b@c> SMTPUTF8", true, 501, "5.1.7"),
        ("FROM:<a@[1.2.3]>", false, 501, "5.1.7"),
        ("FROM:<a@[256.1.1.1]>", false, 501, "5.1.7"),
        ("FROM:<a@[01.2.3.4]>", false, 501, "5.1.7"),
        ("FROM:<a@[1.2.3.4.5]>", false, 501, "5.1.7"),
        ("FROM:<a@[IPv6:1.2.3.4]>", false, 501, "5.1.7"),
        ("FROM:<a@[IPv6:gggg::1]>", false, 501, "5.1.7"),
        ("FROM:<a@[IPv6:1::2::3]>", false, 501, "5.1.7"),
        // Found by fuzzing (trace_received): RFC 5321's "::" stands for at least 2 groups.
        ("FROM:<a@[IPv6:1:2:3:4:5:6:7::]>", false, 501, "5.1.7"),
        ("FROM:<a@[IPv6:::2:3:4:5:6:7:8]>", false, 501, "5.1.7"),
        ("FROM:<a@[IPv6:1:2:3:4:5::192.0.2.1]>", false, 501, "5.1.7"),
        ("FROM:<a@[IPv6:fe80::1%eth0]>", false, 501, "5.1.7"),
        ("FROM:<a@[tag:]>", false, 501, "5.1.7"),
        ("FROM:<a@[tag-:x]>", false, 501, "5.1.7"),
        ("FROM:<a@[:x]>", false, 501, "5.1.7"),
        ("FROM:<a@[]>", false, 501, "5.1.7"),
        ("FROM:<a@[1.2.3.4>", false, 501, "5.1.7"),
        ("FROM:<a@[1.2.3.4]x>", false, 501, "5.1.7"),
        ("FROM:<a@[1.2.3.4] >", false, 501, "5.1.7"),
        ("FROM:<a@[x:a\\b]>", false, 501, "5.1.7"),
        ("FROM:<a@[ü]> SMTPUTF8", true, 501, "5.1.7"),
        ("FROM:<@a,b:u@d>", false, 501, "5.1.7"),
        // RFC 5321 §4.1.2: every At-domain of A-d-l starts with "@".
        ("FROM:<@a,xb:u@d>", false, 501, "5.1.7"),
        ("FROM:<@a;u@d>", false, 501, "5.1.7"),
        ("FROM:<@a>", false, 501, "5.1.7"),
        ("FROM:<@a,@b>", false, 501, "5.1.7"),
        ("FROM:<@a:>", false, 501, "5.1.7"),
        ("FROM:<@:u@d>", false, 501, "5.1.7"),
        ("FROM:<@[1.2.3.4]:u@d>", false, 501, "5.1.7"),
        ("FROM:<ü@example.com>", true, 553, "5.6.7"),
        ("FROM:<ü@example.com> SMTPUTF8", false, 553, "5.6.7"),
        ("FROM:<a@ü.example>", false, 553, "5.6.7"),
        ("FROM:<\"ü\"@example.com>", true, 553, "5.6.7"),
        ("FROM:<@ü.example:a@b>", true, 553, "5.6.7"),
        ("FROM:<a@b> SIZE=1 SIZE=2", false, 501, "5.5.4"),
        ("FROM:<a@b> size=1 SIZE=1", false, 501, "5.5.4"),
        ("FROM:<a@b> XFOO XFOO", false, 501, "5.5.4"),
        ("FROM:<a@b> SIZE=18446744073709551616", false, 552, "5.3.4"),
        ("FROM:<a@b> SIZE=99999999999999999999", false, 552, "5.3.4"),
        ("FROM:<a@b> SIZE=123456789012345678901", false, 501, "5.5.4"),
        ("FROM:<a@b> SIZE=", false, 501, "5.5.4"),
        ("FROM:<a@b> SIZE", false, 501, "5.5.4"),
        ("FROM:<a@b> SIZE=-1", false, 501, "5.5.4"),
        ("FROM:<a@b> SIZE=+1", false, 501, "5.5.4"),
        ("FROM:<a@b> SIZE=1k", false, 501, "5.5.4"),
        ("FROM:<a@b> BODY=9BIT", false, 501, "5.5.4"),
        ("FROM:<a@b> BODY", false, 501, "5.5.4"),
        ("FROM:<a@b> SMTPUTF8=YES", true, 501, "5.5.4"),
        ("FROM:<a@b> RET=ALL", false, 501, "5.5.4"),
        ("FROM:<a@b> RET", false, 501, "5.5.4"),
        (&long_envid, false, 501, "5.5.4"),
        ("FROM:<a@b> ENVID=a+0Db", false, 501, "5.5.4"),
        ("FROM:<a@b> ENVID=a+2", false, 501, "5.5.4"),
        ("FROM:<a@b> ENVID=a+ZZ", false, 501, "5.5.4"),
        ("FROM:<a@b> ENVID=a+C3+A9", false, 501, "5.5.4"),
        ("FROM:<a@b> AUTH=", false, 501, "5.5.4"),
        ("FROM:<a@b> AUTH", false, 501, "5.5.4"),
        ("FROM:<a@b> AUTH=a+00", false, 501, "5.5.4"),
        ("FROM:<a@b> X=1=2", false, 501, "5.5.4"),
        ("FROM:<a@b> -X=1", false, 501, "5.5.4"),
        ("FROM:<a@b> X_Y=1", false, 501, "5.5.4"),
        ("FROM:<a@b> =1", false, 501, "5.5.4"),
        ("FROM:<a@b> X=", false, 501, "5.5.4"),
        ("FROM:<a@b> XÉ=1 SMTPUTF8", true, 501, "5.5.4"),
        ("FROM:<a@b> X-Y=é", false, 501, "5.5.4"),
        ("FROM:<a@b> X-Y=é SMTPUTF8", false, 501, "5.5.4"),
        ("FROM:<a@b> X-Y=é", true, 501, "5.5.4"),
        ("FROM:<a@b> X=\x7f", false, 501, "5.5.4"),
        ("FROM:<a@b> X=a\0b", false, 501, "5.5.4"),
    ];
    for &(args, utf8, code, enh) in cases {
        let err = match parse_mail_from(args, utf8) {
            Ok(m) => panic!("{args:?} (utf8={utf8}) unexpectedly parsed: {m:?}"),
            Err(e) => e,
        };
        let (c, e, text) = err.reply(false);
        assert_eq!((c, e), (code, enh), "{args:?}: {err:?}");
        assert_clean(&text);
    }
}

#[test]
fn rcpt_valid_table() {
    // (args, utf8_allowed, address, parameter keywords, is_postmaster)
    #[rustfmt::skip]
    let cases: &[(&str, bool, &str, &[&str], bool)] = &[
        ("TO:<a@b>", false, "a@b", &[], false),
        ("to: <a@b>", false, "a@b", &[], false),
        ("To:<a@b>  ", false, "a@b", &[], false),
        ("TO:<postmaster>", false, "postmaster", &[], true),
        ("TO:<PostMaster>", false, "PostMaster", &[], true),
        ("TO:<POSTMASTER> NOTIFY=NEVER", false, "POSTMASTER", &["NOTIFY"], true),
        ("TO:<Postmaster@example.com>", false, "Postmaster@example.com", &[], false),
        ("TO:<@a,@b:c@d>", false, "c@d", &[], false),
        ("TO:<\"x y\"@[IPv6:::1]>", false, "\"x y\"@[IPv6:::1]", &[], false),
        ("TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b", false, "a@b", &["NOTIFY", "ORCPT"], false),
        ("TO:<a@b> SIZE=10 SMTPUTF8", false, "a@b", &["SIZE", "SMTPUTF8"], false),
        ("TO:<ü@b>", true, "ü@b", &[], false),
        ("TO:<a@b> XPARAM=ü", true, "a@b", &["XPARAM"], false),
    ];
    for &(args, utf8, address, kws, pm) in cases {
        let r = rcpt(args, utf8);
        assert_eq!(r.address, address, "{args:?}");
        assert_eq!(keywords(&r.params), kws, "{args:?}");
        assert_eq!(r.is_postmaster(), pm, "{args:?}");
    }
}

#[test]
fn rcpt_invalid_table() {
    let long_orcpt = format!("TO:<a@b> ORCPT=rfc822;{}", "x".repeat(501));
    let cases: &[(&str, bool, u16, &str)] = &[
        ("TO:<>", false, 501, "5.1.3"),
        ("TO:<> NOTIFY=NEVER", false, 501, "5.1.3"),
        ("TO:<a b@c>", false, 501, "5.1.3"),
        ("TO:<postmaster", false, 501, "5.1.3"),
        ("TO:<postmaster >", false, 501, "5.1.3"),
        ("TO:<\"postmaster\">", false, 501, "5.1.3"),
        ("TO :<a@b>", false, 501, "5.5.4"),
        ("FROM:<a@b>", false, 501, "5.5.4"),
        ("TO:a@b", false, 501, "5.5.4"),
        ("TO:<postmaster>x", false, 501, "5.5.4"),
        ("TO:<ü@b>", false, 553, "5.6.7"),
        ("TO:<a@b> NOTIFY=NEVER,SUCCESS", false, 501, "5.5.4"),
        ("TO:<a@b> NOTIFY=DELAY,never", false, 501, "5.5.4"),
        ("TO:<a@b> NOTIFY=SUCCESS,,DELAY", false, 501, "5.5.4"),
        ("TO:<a@b> NOTIFY=SUCCESS,", false, 501, "5.5.4"),
        ("TO:<a@b> NOTIFY=SOMETIMES", false, 501, "5.5.4"),
        ("TO:<a@b> NOTIFY=", false, 501, "5.5.4"),
        ("TO:<a@b> NOTIFY", false, 501, "5.5.4"),
        ("TO:<a@b> NOTIFY=NEVER notify=NEVER", false, 501, "5.5.4"),
        ("TO:<a@b> ORCPT=rfc822", false, 501, "5.5.4"),
        ("TO:<a@b> ORCPT=;a@b", false, 501, "5.5.4"),
        ("TO:<a@b> ORCPT=rfc(822;a@b", false, 501, "5.5.4"),
        ("TO:<a@b> ORCPT=rfc822;a+0Ab", false, 501, "5.5.4"),
        ("TO:<a@b> ORCPT=rfc822;a+FFb", false, 501, "5.5.4"),
        ("TO:<a@b> ORCPT=rfc822;ü@b", false, 501, "5.5.4"),
        // Found by fuzzing: non-ASCII in an rfc822 ORCPT, and U+2028 anywhere in xtext.
        ("TO:<a@b> ORCPT=rfc822;a+C3+A9@c", false, 501, "5.5.4"),
        ("TO:<a@b> ORCPT=utf-8;a+E2+80+A8b@c", true, 501, "5.5.4"),
        (&long_orcpt, false, 501, "5.5.4"),
    ];
    for &(args, utf8, code, enh) in cases {
        let err = match parse_rcpt_to(args, utf8) {
            Ok(r) => panic!("{args:?} (utf8={utf8}) unexpectedly parsed: {r:?}"),
            Err(e) => e,
        };
        let (c, e, text) = err.reply(true);
        assert_eq!((c, e), (code, enh), "{args:?}: {err:?}");
        assert_clean(&text);
    }
}

#[test]
fn mail_typed_parameters() {
    let m = mail(
        "FROM:<a@b> SIZE=0 BODY=7bit RET=full ENVID=a+2Bb+3Dc AUTH=e+3Dmc2@x",
        false,
    );
    assert_eq!(m.size, Some(0));
    assert_eq!(m.body, Some(BodyType::SevenBit));
    assert_eq!(m.ret, Some(Ret::Full));
    assert_eq!(m.envid.as_deref(), Some("a+b=c"));
    assert_eq!(m.auth.as_deref(), Some("e=mc2@x"));
    assert!(!m.smtputf8);
    assert!(m.params.iter().all(|p| p.claimed));
    assert_eq!(
        m.params[3].value.as_deref(),
        Some("a+2Bb+3Dc"),
        "raw value kept"
    );

    type Typed = (Option<u64>, Option<BodyType>, Option<Ret>);
    let cases: &[(&str, Typed)] = &[
        ("SIZE=18446744073709551615", (Some(u64::MAX), None, None)),
        ("SIZE=00000000000000000001", (Some(1), None, None)),
        ("BODY=8BITMIME", (None, Some(BodyType::EightBitMime), None)),
        ("body=binarymime", (None, Some(BodyType::BinaryMime), None)),
        ("RET=HDRS", (None, None, Some(Ret::Hdrs))),
        ("ret=Hdrs SIZE=7", (Some(7), None, Some(Ret::Hdrs))),
    ];
    for &(params, expected) in cases {
        let m = mail(&format!("FROM:<a@b> {params}"), false);
        assert_eq!((m.size, m.body, m.ret), expected, "{params}");
    }

    let m = mail("FROM:<a@b> AUTH=<> ENVID=+20x", false);
    assert_eq!(m.auth.as_deref(), Some("<>"));
    assert_eq!(m.envid.as_deref(), Some(" x"));
    let m = mail("FROM:<a@b> ENVID=a+2bb", false);
    assert_eq!(m.envid.as_deref(), Some("a+b"), "lower-case hex accepted");
    let exact = format!("FROM:<a@b> ENVID={}", "x".repeat(100));
    assert_eq!(mail(&exact, false).envid.map(|e| e.len()), Some(100));
    let m = mail("FROM:<a@b> SMTPUTF8 AUTH=ü@example.com", true);
    assert_eq!(m.auth.as_deref(), Some("ü@example.com"));
}

#[test]
fn known_parameters_on_the_wrong_command_are_unclaimed() {
    let m = mail("FROM:<a@b> NOTIFY=NEVER ORCPT=x;y XFOO", false);
    assert_eq!(m.unclaimed_params().count(), 3);
    let r = rcpt(
        "TO:<a@b> SIZE=abc BODY=nonsense RET=x SMTPUTF8 NOTIFY=DELAY",
        false,
    );
    let unclaimed: Vec<_> = r.unclaimed_params().map(|p| p.keyword.as_str()).collect();
    assert_eq!(unclaimed, ["SIZE", "BODY", "RET", "SMTPUTF8"]);
    assert_eq!(
        r.params[0].value.as_deref(),
        Some("abc"),
        "unknown values are not validated"
    );
}

#[test]
fn smtputf8_claimed_only_when_offered() {
    let off = mail("FROM:<a@b> SMTPUTF8", false);
    assert!(off.smtputf8);
    assert_eq!(
        keywords(&off.unclaimed_params().cloned().collect::<Vec<_>>()),
        ["SMTPUTF8"]
    );
    let on = mail("FROM:<a@b> smtputf8", true);
    assert!(on.smtputf8 && on.unclaimed_params().next().is_none());
    assert!(!mail("FROM:<a@b>", true).smtputf8);
}

#[test]
fn rcpt_typed_parameters() {
    let n = |never, success, failure, delay| Notify {
        never,
        success,
        failure,
        delay,
    };
    #[rustfmt::skip]
    let cases: &[(&str, Notify)] = &[
        ("NEVER", n(true, false, false, false)),
        ("never", n(true, false, false, false)),
        ("SUCCESS", n(false, true, false, false)),
        ("delay,Failure", n(false, false, true, true)),
        ("SUCCESS,FAILURE,DELAY", n(false, true, true, true)),
        ("SUCCESS,SUCCESS", n(false, true, false, false)),
    ];
    for (v, expected) in cases {
        let r = rcpt(&format!("TO:<a@b> NOTIFY={v}"), false);
        assert_eq!(r.notify.as_ref(), Some(expected), "{v}");
    }
    let r = rcpt("TO:<a@b> ORCPT=rfc822;a+2Bb@example.com", false);
    let o = r.orcpt.expect("orcpt");
    assert_eq!(
        (o.addr_type.as_str(), o.address.as_str()),
        ("rfc822", "a+b@example.com")
    );
    let r = rcpt("TO:<a@b> ORCPT=UTF-8;a@b;c", false)
        .orcpt
        .map(|o| (o.addr_type, o.address));
    assert_eq!(r, Some(("UTF-8".into(), "a@b;c".into())));
    let r = rcpt("TO:<a@b> ORCPT=rfc822;ü@b", true);
    assert_eq!(r.orcpt.map(|o| o.address), Some("ü@b".into()));
    let r = rcpt(&format!("TO:<a@b> ORCPT=rfc822;{}", "x".repeat(500)), false);
    assert_eq!(r.orcpt.map(|o| o.address.len()), Some(500));
    let r = rcpt("TO:<a@b>", false);
    assert_eq!((r.notify, r.orcpt), (None, None));
}

#[test]
fn length_limits_at_and_past_the_boundary() {
    let l64 = "a".repeat(64);
    let l65 = "a".repeat(65);
    assert_eq!(mail(&format!("FROM:<{l64}@b>"), false).address.len(), 66);
    assert_eq!(
        parse_mail_from(&format!("FROM:<{l65}@b>"), false),
        Err(PathError::LocalPartTooLong { len: 65, max: 64 })
    );
    // A quoted local part counts as sent, quotes included.
    let q = format!("\"{}\"", "a b".repeat(20) + "cc");
    assert_eq!(q.len(), 64);
    assert_eq!(
        rcpt(&format!("TO:<{q}@b>"), false).address,
        format!("{q}@b")
    );
    // Octets, not characters: 32 x 'é' is 64 octets.
    let e32 = "é".repeat(32);
    assert_eq!(
        mail(&format!("FROM:<{e32}@b> SMTPUTF8"), true).address,
        format!("{e32}@b")
    );
    let e33 = "é".repeat(33);
    assert_eq!(
        parse_mail_from(&format!("FROM:<{e33}@b> SMTPUTF8"), true),
        Err(PathError::LocalPartTooLong { len: 66, max: 64 })
    );
    // Path: 2 brackets + 64 + '@' + 189 = 256 octets.
    let at = format!("FROM:<{l64}@{}>", domain_of_len(189));
    assert_eq!(mail(&at, false).address.len(), 254);
    let past = format!("FROM:<{l64}@{}>", domain_of_len(190));
    assert_eq!(
        parse_mail_from(&past, false),
        Err(PathError::PathTooLong { len: 257, max: 256 })
    );
    // A domain of 255 octets only fits when the path limit is raised; 256 is refused first.
    let wide = PathLimits {
        path: 1000,
        ..PathLimits::default()
    };
    let d255 = format!("TO:<a@{}>", domain_of_len(255));
    assert!(parse_rcpt_to_with_limits(&d255, false, &wide).is_ok());
    assert_eq!(
        parse_rcpt_to(&d255, false),
        Err(PathError::PathTooLong { len: 259, max: 256 })
    );
    let d256 = format!("TO:<a@{}>", domain_of_len(256));
    let err = parse_rcpt_to_with_limits(&d256, false, &wide);
    assert_eq!(err, Err(PathError::DomainTooLong { len: 256, max: 255 }));
    // The source route counts towards the path and its domains towards the domain limit.
    let route = format!("FROM:<@{}:a@b>", domain_of_len(256));
    let err = parse_mail_from_with_limits(&route, false, &wide);
    assert_eq!(err, Err(PathError::DomainTooLong { len: 256, max: 255 }));
    let route = format!("FROM:<@{},@{}:a@b>", domain_of_len(130), domain_of_len(130));
    assert!(matches!(
        parse_mail_from(&route, false),
        Err(PathError::PathTooLong { .. })
    ));
    // Raised local-part limit (standards.md: "accept longer if configured").
    let long = PathLimits {
        local_part: 100,
        ..PathLimits::RFC5321
    };
    assert!(parse_mail_from_with_limits(&format!("FROM:<{l65}@b>"), false, &long).is_ok());
    assert_eq!(PathLimits::default(), PathLimits::RFC5321);
}

#[test]
fn over_long_replies_use_the_address_codes() {
    let long = format!("<{}@b>", "a".repeat(65));
    let (code, enh, text) = parse_mail_from(&format!("FROM:{long}"), false)
        .unwrap_err()
        .reply(false);
    assert_eq!((code, enh), (501, "5.1.7"));
    assert!(text.starts_with("Path too long"), "{text}");
    let (code, enh, _) = parse_rcpt_to(&format!("TO:{long}"), false)
        .unwrap_err()
        .reply(true);
    assert_eq!((code, enh), (501, "5.1.3"));
}

#[test]
fn reply_table() {
    use PathError as E;
    let bp = E::BadParameter {
        keyword: "SIZE".into(),
        reason: "must be digits".into(),
    };
    #[rustfmt::skip]
    let cases: Vec<(PathError, bool, u16, &str, &str)> = vec![
        (E::MissingKeyword, false, 501, "5.5.4", "Syntax: MAIL FROM:<address>"),
        (E::MissingKeyword, true, 501, "5.5.4", "Syntax: RCPT TO:<address>"),
        (E::MissingAngleBrackets, false, 501, "5.5.4",
            "Syntax: MAIL FROM:<address> (angle brackets required)"),
        (E::Syntax("x".into()), false, 501, "5.1.7", "Bad sender address syntax: x"),
        (E::Syntax("x".into()), true, 501, "5.1.3", "Bad recipient address syntax: x"),
        (E::NullRecipient, true, 501, "5.1.3", "Null recipient <> not allowed"),
        (E::LocalPartTooLong { len: 65, max: 64 }, false, 501, "5.1.7",
            "Path too long: local part is 65 octets, limit 64"),
        (E::DomainTooLong { len: 256, max: 255 }, true, 501, "5.1.3",
            "Path too long: domain is 256 octets, limit 255"),
        (E::PathTooLong { len: 257, max: 256 }, true, 501, "5.1.3",
            "Path too long: path is 257 octets, limit 256"),
        (E::NonAsciiWithoutSmtpUtf8, false, 553, "5.6.7",
            "Non-ASCII addresses not permitted for that sender without SMTPUTF8"),
        (E::NonAsciiWithoutSmtpUtf8, true, 553, "5.6.7",
            "Non-ASCII addresses not permitted for that recipient without SMTPUTF8"),
        (E::ParameterSyntax("y".into()), false, 501, "5.5.4", "Syntax error in parameters: y"),
        (bp, true, 501, "5.5.4", "Bad SIZE parameter: must be digits"),
        (E::DuplicateParameter("BODY".into()), false, 501, "5.5.4", "Duplicate BODY parameter"),
        (E::SizeTooLarge, false, 552, "5.3.4", "Message size exceeds what this server can accept"),
    ];
    for (err, for_rcpt, code, enh, text) in cases {
        assert_eq!(
            err.reply(for_rcpt),
            (code, enh, text.to_string()),
            "{err:?}"
        );
        assert!(!err.to_string().is_empty());
    }
    let boxed: Box<dyn std::error::Error> = Box::new(PathError::SizeTooLarge);
    assert_eq!(boxed.to_string(), "SIZE value too large");
}

/// Reply text must be printable ASCII: no raw control characters, no client UTF-8.
fn assert_clean(text: &str) {
    assert!(
        text.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "unclean reply text {text:?}"
    );
}

#[test]
fn reasons_name_the_problem_without_echoing_controls() {
    let cases: &[(&str, &str)] = &[
        ("FROM:<a\0@b>", "U+0000"),
        ("FROM:<a@b\x1b>", "U+001B"),
        ("FROM:<\"a\rb\"@c>", "U+000D"),
        ("FROM:<a@b>\tSIZE=1", "TAB"),
        ("FROM:<a@b> SIZE=1\n", "U+000A"),
        ("FROM:<a@b> X\x07Y=1", "U+0007"),
        ("FROM:<a@b> XÉ=1", "U+00C9"),
        ("FROM:<a b@c>", "SP not allowed in local part"),
        ("FROM:<a..b@c>", "'..'"),
        ("FROM:<a@b_c>", "'_' not allowed in domain"),
        ("FROM:<a@[1.2.3]>", "IPv4"),
        ("FROM:<a@[IPv6:zz]>", "IPv6"),
        ("FROM:<a@b>SIZE=1", "expected SP"),
        ("FROM:<a@b> NOTIFY=1 X=1=2", "'='"),
        ("FROM:<a@b> ENVID=+0D", "U+000D"),
    ];
    for &(args, needle) in cases {
        let (_, _, text) = parse_mail_from(args, false).unwrap_err().reply(false);
        assert_clean(&text);
        assert!(text.contains(needle), "{args:?}: {text:?} lacks {needle:?}");
    }
    // An escaped keyword is shortened so a hostile parameter cannot bloat the reply.
    let args = format!("FROM:<a@b> {}\x01=1", "K".repeat(200));
    let err = parse_mail_from(&args, false).unwrap_err();
    match &err {
        PathError::BadParameter { keyword, .. } => assert_eq!(keyword.len(), 32),
        other => panic!("{other:?}"),
    }
    assert!(err.reply(false).2.len() < 120);
}

#[test]
fn claim_marks_and_returns_values() {
    let mut m = mail("FROM:<a@b> XFOO=1 XBAR SIZE=3", false);
    assert_eq!(
        keywords(&m.unclaimed_params().cloned().collect::<Vec<_>>()),
        ["XFOO", "XBAR"]
    );
    assert_eq!(m.claim("xfoo"), Some("1"));
    assert_eq!(m.claim("XBAR"), Some(""));
    assert_eq!(m.claim("NOPE"), None);
    assert_eq!(
        m.claim("size"),
        Some("3"),
        "claiming a known one is harmless"
    );
    assert_eq!(m.unclaimed_params().count(), 0);
    let mut r = rcpt("TO:<a@b> XRCPT=v", false);
    assert_eq!(r.unclaimed_params().count(), 1);
    assert_eq!(r.claim("XRcpt"), Some("v"));
    assert!(r.params[0].claimed);
}

#[test]
fn postmaster_forms() {
    let r = rcpt("TO:<Postmaster@Example.COM>", false);
    assert!(!r.is_postmaster());
    assert!(r.is_postmaster_for("example.com"));
    assert!(!r.is_postmaster_for("example.org"));
    assert!(rcpt("TO:<postmaster>", false).is_postmaster_for("anything.example"));
    assert!(!rcpt("TO:<postmistress@example.com>", false).is_postmaster_for("example.com"));
    assert!(!rcpt("TO:<postmaster.x@example.com>", false).is_postmaster());
}

#[test]
fn local_part_and_domain_split() {
    let cases: &[(&str, &str, &str)] = &[
        ("a@b", "a", "b"),
        ("\"a@b\"@c", "\"a@b\"", "c"),
        ("\"a\\\"@\"@d", "\"a\\\"@\"", "d"),
        ("u@[tag:x@y]", "u", "[tag:x@y]"),
        ("postmaster", "postmaster", ""),
        ("", "", ""),
        ("a@b@c", "a@b", "c"),
        ("\"unterminated@x", "\"unterminated@x", ""),
        ("ü@é.example", "ü", "é.example"),
        ("@", "", ""),
    ];
    for &(addr, l, d) in cases {
        assert_eq!((local_part(addr), domain(addr)), (l, d), "{addr:?}");
    }
    let m = mail("FROM:<@r.example:\"x@y\"@[IPv6:::1]>", false);
    assert_eq!(
        (local_part(&m.address), domain(&m.address)),
        ("\"x@y\"", "[IPv6:::1]")
    );
}
