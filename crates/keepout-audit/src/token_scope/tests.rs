//! Synthetic tokens only: macaroons serialized here in PyPI's two formats, with caveats of the
//! shapes warehouse writes; never a real token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

/// 2030-01-01T00:00:00Z.
const IN_2030: i64 = 1_893_456_000;

fn varint(mut value: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn field(kind: usize, data: &[u8], out: &mut Vec<u8>) {
    varint(kind, out);
    varint(data.len(), out);
    out.extend_from_slice(data);
}

/// A macaroon in libmacaroons' binary v2 format, as PyPI issues them, with these caveats.
fn pypi_token_v2(caveats: &[&str]) -> String {
    let mut bytes = vec![2];
    field(1, b"pypi.org", &mut bytes);
    field(
        2,
        b"{\"version\":1,\"id\":\"00000000-0000-0000-0000-000000000000\"}",
        &mut bytes,
    );
    bytes.push(0);
    for caveat in caveats {
        field(2, caveat.as_bytes(), &mut bytes);
        bytes.push(0);
    }
    bytes.push(0);
    field(6, &[0u8; 32], &mut bytes);
    format!("pypi-{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A macaroon in pymacaroons' v1 format (4-hex-digit packet lengths).
fn pypi_token_v1(caveats: &[&str]) -> String {
    let packet = |key: &str, value: &str| {
        let body = format!("{key} {value}\n");
        format!("{:04x}{body}", body.len() + 4)
    };
    let mut text = packet("location", "pypi.org") + &packet("identifier", "id");
    for caveat in caveats {
        text += &packet("cid", caveat);
    }
    text += &packet("signature", "00000000000000000000000000000000");
    format!("pypi-{}", URL_SAFE_NO_PAD.encode(text))
}

#[test]
fn the_synthetic_token_has_pypis_shape() {
    let token = pypi_token_v2(&[r#"{"version":1,"permissions":"user"}"#]);
    assert!(token.starts_with("pypi-AgEIcHlwaS5vcmc"), "{token}");
    let found = keepout_credentials::tokens::find_secrets(&token);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, PYPI_KIND);
}

#[test]
fn a_user_token_is_scoped_to_the_whole_account() {
    for token in [
        pypi_token_v2(&[r#"{"version":1,"permissions":"user"}"#]),
        pypi_token_v2(&[r#"[3,"8d0c4d23-6d6b-4b4b-9e9b-0e0e0e0e0e0e"]"#]),
        pypi_token_v2(&[]),
        pypi_token_v1(&[r#"{"version":1,"permissions":"user"}"#]),
    ] {
        let read = read_pypi_token(&token).unwrap();
        assert_eq!(read.scope, PypiScope::WholeAccount);
        let scope = describe(PYPI_KIND, &token);
        assert_eq!(
            scope.label,
            "PyPI token scoped to the whole account (every project you maintain), with no expiry"
        );
        assert!(scope.advice.unwrap().contains("trusted publishing"));
    }
}

#[test]
fn a_project_token_names_its_project() {
    for token in [
        pypi_token_v2(&[r#"{"version":1,"permissions":{"projects":["widget"]}}"#]),
        pypi_token_v2(&[
            r#"[1,["widget"]]"#,
            r#"[2,["2a6b7c7e-0000-0000-0000-000000000000"]]"#,
        ]),
        pypi_token_v1(&[r#"{"version":1,"permissions":{"projects":["widget"]}}"#]),
    ] {
        assert_eq!(
            read_pypi_token(&token).unwrap().scope,
            PypiScope::Projects(vec!["widget".into()])
        );
        assert!(describe(PYPI_KIND, &token)
            .label
            .starts_with("PyPI token scoped to project widget"));
    }
    let narrowed = pypi_token_v2(&[r#"[1,["widget","gadget"]]"#, r#"[1,["gadget"]]"#]);
    assert_eq!(
        read_pypi_token(&narrowed).unwrap().scope,
        PypiScope::Projects(vec!["gadget".into()])
    );
    let by_id = pypi_token_v2(&[r#"{"project_ids":["2a6b7c7e"]}"#]);
    assert_eq!(
        read_pypi_token(&by_id).unwrap().scope,
        PypiScope::ProjectIds(1)
    );
}

#[test]
fn expiry_is_read_in_both_forms() {
    let new_form = pypi_token_v2(&[
        &format!("[0,{IN_2030},{}]", IN_2030 - 86_400),
        r#"[1,["widget"]]"#,
    ]);
    let legacy = pypi_token_v2(&[&format!(r#"{{"exp":{IN_2030},"nbf":0}}"#)]);
    for token in [&new_form, &legacy] {
        assert_eq!(read_pypi_token(token).unwrap().expires_at, Some(IN_2030));
    }
    let read = read_pypi_token(&new_form).unwrap();
    assert_eq!(
        read.scope_of(IN_2030 - 10).label,
        "PyPI token scoped to project widget, expiring 2030-01-01"
    );
    assert_eq!(
        read.scope_of(IN_2030 + 10).label,
        "PyPI token scoped to project widget, expired 2030-01-01"
    );
}

#[test]
fn a_trusted_publishing_token_says_so() {
    let token = pypi_token_v2(&[r#"[4,"publisher-id",null]"#, &format!("[0,{IN_2030},0]")]);
    assert_eq!(
        read_pypi_token(&token).unwrap().scope,
        PypiScope::TrustedPublisher
    );
}

#[test]
fn malformed_tokens_are_unreadable_not_guessed() {
    let cut = pypi_token_v2(&[r#"[1,["widget"]]"#]);
    let cut = &cut[..cut.len() - 60];
    let not_json = pypi_token_v2(&["project = widget"]);
    for token in [
        "pypi-AgEIcHlwaS5vcmcxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "pypi-!!!",
        "pypi-",
        cut,
        &not_json,
        "pypi-MDAzMGxvY2F0aW9u",
    ] {
        assert!(read_pypi_token(token).is_err(), "{token}");
        assert_eq!(
            describe(PYPI_KIND, token).label,
            "PyPI token (could not read its scope)"
        );
    }
    assert_eq!(read_pypi_token("ghp_x"), Err(TokenScopeError::NotPypi));
}

#[test]
fn github_tokens_by_prefix() {
    let classic = format!("ghp_{}", "a1B2".repeat(9));
    let scope = describe("GitHub token", &classic);
    assert_eq!(scope.label, "GitHub token (classic, ghp_)");
    assert!(scope.why.contains("every scope it was given") && scope.why.contains("never expires"));
    assert!(scope.advice.unwrap().contains("fine-grained"));
    let fine = format!("github_pat_{}", "a1B2".repeat(12));
    let scope = describe("GitHub fine-grained token", &fine);
    assert_eq!(scope.label, "GitHub fine-grained token");
    assert!(scope.why.contains("limited to the repositories"));
    assert_eq!(describe("npm token", "npm_x").why, "");
}

#[test]
fn dates() {
    assert_eq!(utc_date(0), "1970-01-01");
    assert_eq!(utc_date(IN_2030), "2030-01-01");
    assert_eq!(utc_date(951_782_400), "2000-02-29");
}

/// The home audit names the scope of the tokens in its plaintext places, never their values.
#[test]
fn the_home_audit_says_what_its_tokens_can_do() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let account = pypi_token_v2(&[r#"{"version":1,"permissions":"user"}"#]);
    let project = pypi_token_v2(&[r#"[1,["widget"]]"#, &format!("[0,{IN_2030},0]")]);
    let classic = format!("ghp_{}", "a1B2".repeat(9));
    std::fs::write(
        h.join(".pypirc"),
        format!("[pypi]\nusername = __token__\npassword = {account}\n"),
    )
    .unwrap();
    std::fs::write(
        h.join(".bash_history"),
        format!("twine upload -p {project} dist/*\n"),
    )
    .unwrap();
    let mut ctx = crate::Context::fixture(h);
    ctx.env.push(("GITHUB_TOKEN".into(), classic.clone()));
    let findings = crate::audit(&ctx);
    let at = |location: &str| {
        findings
            .iter()
            .find(|f| f.location == location)
            .unwrap_or_else(|| panic!("{location}: {findings:#?}"))
    };
    let pypirc = at("~/.pypirc");
    assert_eq!(
        pypirc.title,
        "credentials in plain text, written by twine / setuptools: PyPI token scoped to the whole account (every project you maintain), with no expiry"
    );
    assert!(pypirc.fix.contains("trusted publishing"), "{pypirc:#?}");
    let history = at("~/.bash_history:1");
    assert!(history.title.starts_with(
        "PyPI token scoped to project widget, expiring 2030-01-01 in shell history (pypi…(sha256:"
    ));
    let environment = at("environment");
    assert!(environment
        .title
        .starts_with("GitHub token (classic, ghp_) in the environment variable GITHUB_TOKEN"));
    assert!(environment.why.contains("every scope it was given"));
    let report = serde_json::to_string(&findings).unwrap();
    for secret in [&account, &project, &classic] {
        assert!(!report.contains(secret.as_str()));
    }
}
