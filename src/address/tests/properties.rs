//! Property tests: no input panics the path parsers, and valid paths round-trip.

use super::*;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Properties

const ALPHABET: &[char] = &[
    '<', '>', '@', '.', '"', '\\', ':', ';', ',', '=', '+', ' ', 'a', 'Z', '0', '9', '[', ']',
];

fn check_no_panic(s: &str) {
    for utf8 in [false, true] {
        for (res, for_rcpt) in [
            (parse_mail_from(s, utf8).map(|m| m.address), false),
            (parse_rcpt_to(s, utf8).map(|r| r.address), true),
        ] {
            match res {
                Ok(addr) => assert!(s.contains(&addr), "{s:?} gave foreign address {addr:?}"),
                Err(e) => assert_clean(&e.reply(for_rcpt).2),
            }
        }
    }
    let _ = (local_part(s), domain(s));
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_strings(s in any::<String>()) {
        check_no_panic(&s);
    }

    #[test]
    fn never_panics_on_grammar_alphabet(
        prefix in prop::sample::select(vec!["", "FROM:", "TO:", "FROM:<", "TO:<", "FROM:<@"]),
        body in prop::collection::vec(prop::sample::select(ALPHABET), 0..60),
        tail in prop::sample::select(vec!["", " SIZE=1", " NOTIFY=NEVER", " ORCPT=a;b", ">"]),
    ) {
        let s = format!("{prefix}{}{tail}", body.into_iter().collect::<String>());
        check_no_panic(&s);
    }

    #[test]
    fn dot_string_at_domain_round_trips(
        atoms in prop::collection::vec("[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}", 1..4),
        labels in prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..5),
        spaces in 0usize..3,
    ) {
        let (local, dom) = (atoms.join("."), labels.join("."));
        let addr = format!("{local}@{dom}");
        let pad = " ".repeat(spaces);
        let m = parse_mail_from(&format!("FROM:{pad}<{addr}>{pad}"), false).map(|m| m.address);
        prop_assert_eq!(m.as_deref(), Ok(addr.as_str()));
        let r = parse_rcpt_to(&format!("to:<{addr}> NOTIFY=NEVER"), true).map(|r| r.address);
        prop_assert_eq!(r.as_deref(), Ok(addr.as_str()));
        prop_assert_eq!(local_part(&addr), local.as_str());
        prop_assert_eq!(domain(&addr), dom.as_str());
    }

    #[test]
    fn quoted_local_parts_round_trip(
        content in prop::collection::vec(prop_oneof![
            "[ !#-\\[\\]-~]".prop_map(|c| c.to_string()),
            "[ -~]".prop_map(|c| format!("\\{c}")),
        ], 0..20),
    ) {
        let local = format!("\"{}\"", content.concat());
        prop_assume!(local.len() <= 64);
        let addr = format!("{local}@example.com");
        let m = parse_mail_from(&format!("FROM:<{addr}> SIZE=1"), false).map(|m| m.address);
        prop_assert_eq!(m.as_deref(), Ok(addr.as_str()));
        prop_assert_eq!(local_part(&addr), local.as_str());
        prop_assert_eq!(domain(&addr), "example.com");
    }

    #[test]
    fn size_accepts_every_u64(n in any::<u64>()) {
        let m = parse_mail_from(&format!("FROM:<> SIZE={n}"), false).map(|m| m.size);
        prop_assert_eq!(m, Ok(Some(n)));
    }
}
