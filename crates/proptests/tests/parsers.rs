//! Parsers as properties: what parses re-serialises to text that parses to the same value,
//! and what the grammar forbids is refused.

use apiauth_basic::{BasicCredentials, CredentialEncoding, decode_credentials};
use apiauth_core::ScopeSet;
use apiauth_core::header::{authorization_token68, is_token68};
use apiauth_core::scope::is_valid_scope_token;
use apiauth_oauth2::{Audience, IntrospectionResponse};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// RFC 6749 §3.3 `scope-token`: %x21 / %x23-5B / %x5D-7E.
fn scope_token() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,12}"
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn scope_sets_round_trip_through_their_rfc6749_text(tokens in prop::collection::vec(scope_token(), 0..6)) {
        let set = ScopeSet::parse(&tokens.join(" ")).unwrap();
        for t in &tokens {
            prop_assert!(set.contains(t));
        }
        let again = ScopeSet::parse(&set.to_string()).unwrap();
        prop_assert_eq!(&again, &set);
        let json = serde_json::to_string(&set).unwrap();
        prop_assert_eq!(serde_json::from_str::<ScopeSet>(&json).unwrap(), set);
    }

    #[test]
    fn scope_strings_are_accepted_exactly_when_rfc6749_allows_them(s in "[ -~\t\u{e9}]{0,16}") {
        let allowed = s.is_empty() || s.split(' ').all(is_valid_scope_token);
        prop_assert_eq!(ScopeSet::parse(&s).is_ok(), allowed, "{:?}", s);
    }

    #[test]
    fn basic_credentials_round_trip_in_both_encodings(
        user in "[^:\\p{Cc}]{0,16}",
        password in "[^\\p{Cc}]{0,24}",
        form in any::<bool>(),
    ) {
        let enc = if form { CredentialEncoding::FormUrlEncoded } else { CredentialEncoding::Plain };
        // Unicode normalisation (RFC 7617 §2.1) is part of the parse; compare normalised.
        let c = BasicCredentials::new(user, password);
        let v = c.to_header_value(enc).unwrap();
        let token = v.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let once = decode_credentials(token, enc).unwrap();
        let v2 = once.to_header_value(enc).unwrap();
        let twice = decode_credentials(v2.to_str().unwrap().strip_prefix("Basic ").unwrap(), enc).unwrap();
        prop_assert_eq!(&twice, &once);
        // Debug shows the user-id and nothing of the password.
        prop_assert_eq!(
            format!("{once:?}"),
            format!("BasicCredentials {{ user_id: {:?}, password: \"[redacted]\" }}", once.user_id())
        );
    }

    #[test]
    fn token68_credentials_round_trip_and_anything_else_is_400(
        scheme in prop::sample::select(vec!["Bearer", "bearer", "BASIC", "ApiKey"]),
        token in "[A-Za-z0-9._~+/-]{1,40}={0,2}",
        junk in "[ ,;\"=]{1,3}",
    ) {
        let ok = http::Request::get("/").header("authorization", format!("{scheme} {token}")).body(()).unwrap();
        prop_assert_eq!(authorization_token68(&ok, scheme).unwrap(), Some(token.as_str()));
        prop_assert!(is_token68(&token));
        let bad_value = format!("{scheme} {token}{junk}x");
        let bad = http::Request::get("/").header("authorization", bad_value).body(()).unwrap();
        prop_assert_eq!(authorization_token68(&bad, scheme).unwrap_err().status(), 400);
    }

    #[test]
    fn introspection_answers_round_trip_as_json(
        active in any::<bool>(),
        scope in prop::option::of("[a-z]{1,6}( [a-z]{1,6}){0,2}"),
        sub in prop::option::of("\\PC{0,12}"),
        exp in prop::option::of(any::<u64>()),
        aud in prop::option::of(prop_oneof![
            "[a-z]{1,8}".prop_map(Audience::One),
            prop::collection::vec("[a-z]{1,8}", 0..3).prop_map(Audience::Many),
        ]),
    ) {
        let r = IntrospectionResponse { active, scope, sub, exp, aud, ..IntrospectionResponse::default() };
        let text = serde_json::to_string(&r).unwrap();
        prop_assert_eq!(serde_json::from_str::<IntrospectionResponse>(&text).unwrap(), r);
    }
}
