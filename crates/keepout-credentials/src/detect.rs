//! Does a configuration file hold credentials, and what is it without them?
//!
//! One detector for every text format that tools keep settings in (ini, TOML, YAML, JSON, XML,
//! shell, properties, gitconfig, npmrc): [`examine`] finds
//!
//! * URLs with credentials in their userinfo: `https://user:password@host`, `https://TOKEN@host`
//!   (a user name alone, `ssh://git@host`, is not one);
//! * `Authorization:` and `Proxy-Authorization:` headers with a value (`http.extraHeader`);
//! * values of credential keys: a key that ends in `password`, `passwd`, `passphrase`, `token`
//!   (`_authToken`), `_auth`, `secret`, `api_key`, `apikey`, `access_key`, `secret_key`,
//!   `private_key`, `key_data` or `authorization`, after `=` or `:` (`password = x`,
//!   `"auth": "x"`, `export GH_TOKEN=x`), and as an XML element (`<password>x</password>`);
//! * tokens of a published shape anywhere ([`crate::tokens`]), comments included;
//!
//! and removes each of them in place: the userinfo goes from the URL, the header goes, a value
//! becomes empty (`""` where it was bare, so TOML and YAML stay valid). Everything else stays
//! byte for byte. A placeholder is not a credential: `${VAR}`, `$VAR`, `$(cmd)`, `%(x)s`,
//! `{{x}}`, `<your token>`, `true`/`false`/`null`.
//!
//! The result is checked again with the same rules: when anything is still found, or the file
//! holds a private key block, or its shape is one that only exists to hold credentials
//! ([`Shape::Netrc`], [`Shape::Secret`]), the verdict is [`Verdict::Mask`]. So a
//! [`Verdict::Redacted`] text never holds what this detector can see.

use std::sync::OnceLock;

use regex::Regex;

use crate::tokens;

/// What a file is, as far as removing credentials from it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Text settings (ini, TOML, YAML, JSON, XML, shell, properties): the credentials are values
    /// and can be removed, leaving the rest for the tool.
    Text,
    /// netrc's `machine H login U password P`: without its passwords it is of no use, so a
    /// netrc with one is masked.
    Netrc,
    /// The whole file is a secret (a key, a keyring): masked when it is not empty.
    Secret,
}

/// One credential found: where, what kind, and a fingerprint (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// 1-based; 0 for the file as a whole.
    pub line: usize,
    pub kind: &'static str,
    pub shown: String,
}

/// What to show of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No credentials: show it as it is.
    Clean,
    /// The same text with the credentials removed.
    Redacted { text: String, hits: Vec<Hit> },
    /// Hide it whole.
    Mask { hits: Vec<Hit> },
}

impl Verdict {
    pub fn hits(&self) -> &[Hit] {
        match self {
            Verdict::Clean => &[],
            Verdict::Redacted { hits, .. } | Verdict::Mask { hits } => hits,
        }
    }
}

pub const URL_USERINFO: &str = "URL with credentials (user:password@)";
pub const AUTH_HEADER: &str = "Authorization header";
pub const CREDENTIAL_VALUE: &str = "credential value";
pub const WHOLE_FILE: &str = "the file is a secret";

/// Credential key endings (lower case, `-` read as `_`).
const KEY_ENDINGS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "token",
    "_auth",
    "secret",
    "api_key",
    "apikey",
    "access_key",
    "secret_key",
    "private_key",
    "privatekey",
    "key_data",
    "authorization",
];

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid pattern"))
}

fn url_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r#"(?i)(?-u:\b)[a-z][a-z0-9+.\-]*://([^/\s@"'<>]+)@"#)
}

fn auth_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r#"(?i)(?-u:\b)(?:proxy-)?authorization[ \t]*:[ \t]*((?:basic|bearer|token|digest|negotiate)?[ \t]*)([^"'\r\n]*)"#,
    )
}

fn key_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r#"([A-Za-z0-9_.\-]+)["']?[ \t]*[=:][ \t]*"#)
}

fn xml_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"<([A-Za-z0-9_.:\-]+)>([^<]+)</")
}

/// Is this key (`_authToken`, `DB_PASSWORD`, `client-key-data`) one whose value is a secret?
pub fn is_credential_key(key: &str) -> bool {
    let k = key_name(key);
    k == "auth" || k == "pass" || KEY_ENDINGS.iter().any(|e| k.ends_with(e))
}

/// A key's last part (after `:` and `.`: `//registry/:_authToken`, `http.extraHeader`), in lower
/// case with `-` read as `_`.
fn key_name(key: &str) -> String {
    let k = key.to_ascii_lowercase().replace('-', "_");
    k.rsplit([':', '.']).next().unwrap_or(&k).to_string()
}

/// A value that stands for a credential elsewhere, or for none.
fn placeholder(value: &str) -> bool {
    let v = value.trim();
    // `Bearer $TOKEN`: the scheme of an Authorization value says nothing.
    let lower = v.to_ascii_lowercase();
    let v = ["basic ", "bearer ", "token ", "digest "]
        .iter()
        .find(|s| lower.starts_with(*s))
        .map_or(v, |s| v[s.len()..].trim_start());
    v.is_empty()
        || v.starts_with('$')
        || v.starts_with("%(")
        || v.starts_with("{{")
        || v.starts_with('<')
        || v.starts_with('!')
        || v.chars().all(|c| c == '*')
        || ["true", "false", "yes", "no", "null", "none", "~"]
            .contains(&v.to_ascii_lowercase().as_str())
}

/// [`placeholder`]; for a key setting (`privateKey`, `ssl_key`), a path to the key file; and
/// for an `auth` setting, the name of a method (`AUTH=peercred`, `TCP_AUTH=sys`: xpra's
/// `/etc/default/xpra`). npm's and Docker's `auth`/`_auth` hold base64, which has capitals or
/// digits; a lower-case word without digits is taken for a method's name.
fn placeholder_for(key: &str, value: &str) -> bool {
    let v = value.trim();
    let k = key_name(key);
    let method_name = v.len() <= 24
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_');
    placeholder(v)
        || (k.ends_with("key") && (v.starts_with('/') || v.starts_with("~/")))
        || ((k == "auth" || k.ends_with("_auth")) && method_name)
}

/// A userinfo that is a credential: with a password, or a token as the user name.
fn credential_userinfo(userinfo: &str) -> bool {
    match userinfo.split_once(':') {
        Some((_, password)) => !placeholder(password),
        None => {
            !placeholder(userinfo) && (userinfo.len() >= 20 || !tokens::find(userinfo).is_empty())
        }
    }
}

/// Remove the credentials from one line; each removal is recorded in `hits`.
/// In a `comment` (`#`, `;`, `<!-- -->`), only URLs, headers and token shapes count: stock files
/// carry examples there (`<password>repopwd</password>` in Maven's `settings.xml`).
fn scrub_line(line: &str, n: usize, comment: bool, hits: &mut Vec<Hit>) -> String {
    let mut hit = |kind: &'static str, secret: &str| {
        hits.push(Hit {
            line: n,
            kind,
            shown: tokens::fingerprint(secret),
        })
    };
    // URL userinfo: drop it (and its `@`), keep the URL.
    let mut out = String::with_capacity(line.len());
    let mut last = 0;
    // Each expression only where its literal is (it is compiled the first time one is).
    let urls = line.contains("://").then(url_re);
    for c in urls.into_iter().flat_map(|re| re.captures_iter(line)) {
        let info = c.get(1).expect("group");
        if credential_userinfo(info.as_str()) {
            hit(URL_USERINFO, info.as_str());
            out.push_str(&line[last..info.start()]);
            last = info.end() + 1; // and the `@`
        }
    }
    out.push_str(&line[last..]);
    let line = out;

    // Authorization headers: the header goes, to the end of its quoted string or line.
    let mut out = String::with_capacity(line.len());
    let mut last = 0;
    let headers = line
        .to_ascii_lowercase()
        .contains("authorization")
        .then(auth_re);
    for c in headers.into_iter().flat_map(|re| re.captures_iter(&line)) {
        let whole = c.get(0).expect("match");
        let value = c.get(2).expect("group").as_str();
        if !placeholder(value) {
            hit(AUTH_HEADER, value.trim());
            out.push_str(&line[last..whole.start()]);
            last = whole.end();
        }
    }
    out.push_str(&line[last..]);
    let line = out;

    if comment {
        return scrub_shapes(&line, n, hits);
    }

    // XML elements with a credential name: emptied.
    let mut out = String::with_capacity(line.len());
    let mut last = 0;
    let elements = line.contains("</").then(xml_re);
    for c in elements.into_iter().flat_map(|re| re.captures_iter(&line)) {
        let (name, value) = (c.get(1).expect("group"), c.get(2).expect("group"));
        if is_credential_key(name.as_str()) && !placeholder_for(name.as_str(), value.as_str()) {
            hit(CREDENTIAL_VALUE, value.as_str());
            out.push_str(&line[last..value.start()]);
            last = value.end();
        }
    }
    out.push_str(&line[last..]);
    let line = out;

    // key = value, key: value, "key": "value", export KEY=value: the value emptied.
    let mut out = String::with_capacity(line.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(c) = key_re().captures_at(&line, from) {
        let whole = c.get(0).expect("match");
        from = whole.end().max(from + 1);
        if whole.end() < last || !is_credential_key(&c[1]) {
            continue;
        }
        let rest = &line[whole.end()..];
        let (start, end, quoted) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => match rest[1..].find(q) {
                Some(close) => (1, 1 + close, true),
                None => (1, rest.len(), true),
            },
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || "\"',;}<#".contains(c))
                    .unwrap_or(rest.len());
                (0, end, false)
            }
        };
        let value = &rest[start..end];
        // A bare `Authorization: ...` is a header, which the header rule read as a whole.
        let header = !quoted && c[1].to_ascii_lowercase().ends_with("authorization");
        if header || value.starts_with("//") || placeholder_for(&c[1], value) {
            continue; // `https://...` after `url:` is no value of a credential key
        }
        hit(CREDENTIAL_VALUE, value);
        out.push_str(&line[last..whole.end() + start]);
        if !quoted {
            out.push_str("\"\"");
        }
        last = whole.end() + end;
        from = last;
    }
    out.push_str(&line[last..]);
    scrub_shapes(&out, n, hits)
}

/// Tokens of a known shape, wherever they are left: removed.
fn scrub_shapes(line: &str, n: usize, hits: &mut Vec<Hit>) -> String {
    let mut line = line.to_string();
    let shapes: Vec<_> = tokens::shapes_in(&line).collect();
    for (kind, re) in shapes {
        if kind == tokens::PRIVATE_KEY {
            continue;
        }
        if let Some(m) = re.find(&line) {
            hits.push(Hit {
                line: n,
                kind,
                shown: tokens::fingerprint(m.as_str()),
            });
            line = re.replace_all(&line, "").into_owned();
        }
    }
    line
}

/// netrc: `password P` (or `passwd`) anywhere, tokens separated by blanks.
fn netrc_hits(text: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            if (pair[0] == "password" || pair[0] == "passwd") && !placeholder(pair[1]) {
                hits.push(Hit {
                    line: n + 1,
                    kind: CREDENTIAL_VALUE,
                    shown: tokens::fingerprint(pair[1]),
                });
            }
        }
    }
    hits
}

/// Bumped whenever what the detector finds changes, so that a verdict remembered by an earlier
/// build (the sandbox's cache of clean system files) is not trusted any more.
pub const REVISION: u32 = 2;

/// Parts of every token shape, in lower case: a line with none of them holds no token.
const SHAPE_NEEDLES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "ghr_",
    "github_pat_",
    "pypi-",
    "npm_",
    "cio",
    "glpat-",
    "akia",
    "xoxb-",
    "xoxp-",
];
/// Parts of every credential key ([`KEY_ENDINGS`]), in lower case.
const KEY_NEEDLES: &[&str] = &[
    "passw",
    "passphrase",
    "pass=",
    "pass =",
    "pass:",
    "pass\"",
    "token",
    "auth",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "access-key",
    "private_key",
    "privatekey",
    "private-key",
    "key_data",
    "key-data",
];

/// Could any rule match this line? A cheap test that spares the regular expressions (and their
/// compilation) the lines, and usually the files, that hold nothing: most of them.
fn worth_a_look(line: &str, comment: bool) -> bool {
    // One pass of an automaton over the needles, ignoring ASCII case: no lower-case copy, no
    // search per needle. In a comment only the token shapes, "authorization" and URLs count,
    // so a comment is searched for those alone (a key matched there could otherwise hide a
    // shape that overlaps it); leftmost-longest keeps "auth" from hiding "authorization".
    let (automaton, url) = if comment {
        needles(false)
    } else {
        needles(true)
    };
    automaton
        .find_iter(line)
        .any(|m| m.pattern().as_usize() != url || line.contains('@'))
}

/// "authorization", [`SHAPE_NEEDLES`], "://" and (`keys`) [`KEY_NEEDLES`], as one automaton
/// built once, with the pattern index of "://".
fn needles(keys: bool) -> (&'static aho_corasick::AhoCorasick, usize) {
    type Cell = std::sync::OnceLock<aho_corasick::AhoCorasick>;
    static WITH_KEYS: Cell = Cell::new();
    static WITHOUT_KEYS: Cell = Cell::new();
    let cell = if keys { &WITH_KEYS } else { &WITHOUT_KEYS };
    let automaton = cell.get_or_init(|| {
        let keys: &[&str] = if keys { KEY_NEEDLES } else { &[] };
        let patterns = std::iter::once("authorization")
            .chain(SHAPE_NEEDLES.iter().copied())
            .chain(std::iter::once("://"))
            .chain(keys.iter().copied());
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(patterns)
            .expect("fixed needles build")
    });
    (automaton, SHAPE_NEEDLES.len() + 1)
}

/// The text with every credential removed, and what was removed.
fn scrub(text: &str) -> (String, Vec<Hit>) {
    // The same cheap test over the whole text first: what no line of it could match, no line
    // does (each needle is sought in the whole text, a superset of any one line), and most
    // files hold nothing.
    if !worth_a_look(text, false) {
        return (text.to_string(), Vec::new());
    }
    let mut hits = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut in_xml_comment = false;
    for (n, piece) in text.split_inclusive('\n').enumerate() {
        let (line, end) = match piece.strip_suffix('\n') {
            Some(l) => match l.strip_suffix('\r') {
                Some(l) => (l, "\r\n"),
                None => (l, "\n"),
            },
            None => (piece, ""),
        };
        let trimmed = line.trim_start();
        let opens = trimmed.starts_with("<!--");
        let comment = in_xml_comment || opens || trimmed.starts_with(['#', ';']);
        if let Some(at) = line.rfind("<!--") {
            in_xml_comment = !line[at..].contains("-->");
        } else if in_xml_comment && line.contains("-->") {
            in_xml_comment = false;
        }
        if !worth_a_look(line, comment) {
            out.push_str(piece);
            continue;
        }
        let before = hits.len();
        let scrubbed = scrub_line(line, n + 1, comment, &mut hits);
        out.push_str(if hits.len() == before {
            line
        } else {
            &scrubbed
        });
        out.push_str(end);
    }
    (out, hits)
}

/// What to show of a file of this shape with this text.
pub fn examine(text: &str, shape: Shape) -> Verdict {
    let private_keys: Vec<Hit> = (if text.contains("PRIVATE KEY-----") {
        tokens::find(text)
    } else {
        Vec::new()
    })
    .into_iter()
    .filter(|(_, kind, _)| *kind == tokens::PRIVATE_KEY)
    .map(|(line, kind, shown)| Hit { line, kind, shown })
    .collect();
    match shape {
        Shape::Secret if !text.trim().is_empty() => {
            return Verdict::Mask {
                hits: vec![Hit {
                    line: 0,
                    kind: WHOLE_FILE,
                    shown: String::new(),
                }],
            }
        }
        Shape::Secret => return Verdict::Clean,
        Shape::Netrc => {
            let mut hits = netrc_hits(text);
            hits.extend(scrub(text).1);
            hits.extend(private_keys);
            return if hits.is_empty() {
                Verdict::Clean
            } else {
                Verdict::Mask { hits }
            };
        }
        Shape::Text => {}
    }
    let (redacted, mut hits) = scrub(text);
    if !private_keys.is_empty() {
        hits.extend(private_keys);
        return Verdict::Mask { hits };
    }
    if hits.is_empty() {
        return Verdict::Clean;
    }
    // What is left must be clean by the same rules; otherwise hide it all.
    if !scrub(&redacted).1.is_empty() || !tokens::find(&redacted).is_empty() {
        return Verdict::Mask { hits };
    }
    Verdict::Redacted {
        text: redacted,
        hits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(text: &str) -> String {
        match examine(text, Shape::Text) {
            Verdict::Redacted { text, .. } => text,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn a_key_inside_a_longer_needle_hides_nothing() {
        // "auth" (a key, ignored in comments) sits inside "authorization" (never ignored), and
        // "token" (a key) overlaps "npm_" (a shape) in "tokenpm_".
        assert!(worth_a_look("# Authorization: Bearer abc", true));
        assert!(!worth_a_look("# the auth section", true));
        assert!(worth_a_look("auth = x", false));
        assert!(worth_a_look("see https://u:p@host", true));
        assert!(!worth_a_look("see https://host", true));
        assert!(
            worth_a_look("# GHP_abc", true),
            "ASCII case does not matter"
        );
    }

    #[test]
    fn urls_lose_their_userinfo_only() {
        assert_eq!(
            redacted("[global]\nindex-url = https://alice:s3cret@pypi.internal/simple\n"),
            "[global]\nindex-url = https://pypi.internal/simple\n"
        );
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        assert_eq!(
            redacted(&format!(
                "[url \"https://{gh}@github.com/\"]\n\tinsteadOf = https://github.com/\n"
            )),
            "[url \"https://github.com/\"]\n\tinsteadOf = https://github.com/\n"
        );
        for clean in [
            "url = ssh://git@github.com/x\n",
            "url = https://alice@example.org/\n",
            "proxy = http://user:${PROXY_PASSWORD}@proxy:3128\n",
            "index-url = https://pypi.org/simple\n",
        ] {
            assert_eq!(examine(clean, Shape::Text), Verdict::Clean, "{clean}");
        }
    }

    #[test]
    fn headers_keys_and_shapes() {
        assert_eq!(
            redacted(
                "[http \"https://creds.invalid/\"]\n\textraHeader = Authorization: Bearer abc123\n"
            ),
            "[http \"https://creds.invalid/\"]\n\textraHeader = \n"
        );
        assert_eq!(
            redacted("//registry.npmjs.org/:_authToken=npm-secret\nregistry=https://registry.npmjs.org/\n"),
            "//registry.npmjs.org/:_authToken=\"\"\nregistry=https://registry.npmjs.org/\n"
        );
        assert_eq!(
            redacted("{\"auths\": {\"r.io\": {\"auth\": \"dXNlcjpwYXNz\"}}}\n"),
            "{\"auths\": {\"r.io\": {\"auth\": \"\"}}}\n"
        );
        // A method name only where the key is `auth`: a password may be one word.
        assert_eq!(
            redacted("_auth = dXNlcjpwYXNz\nREDIS_AUTH=hunter2\nDB_PASSWORD=peercred\n"),
            "_auth = \"\"\nREDIS_AUTH=\"\"\nDB_PASSWORD=\"\"\n"
        );
        assert_eq!(
            redacted("<server><id>x</id><password>hunter2</password></server>\n"),
            "<server><id>x</id><password></password></server>\n"
        );
        assert_eq!(
            redacted("PATH=/usr/bin\nexport DEPLOY_TOKEN=abc\naws_secret_access_key = k\n"),
            "PATH=/usr/bin\nexport DEPLOY_TOKEN=\"\"\naws_secret_access_key = \"\"\n"
        );
        let gh = format!("ghp_{}", "a1B2".repeat(9));
        assert_eq!(redacted(&format!("# old one: {gh}\n")), "# old one: \n");
        for clean in [
            "<!-- a sample:\n<server>\n  <password>repopwd</password>\n  <privateKey>/k</privateKey>\n</server>\n-->\n",
            "<server><privateKey>/path/to/key</privateKey></server>\n",
            "# password = changeme\n; token = example\n",
            "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n",
            // xpra's /etc/default/xpra: authentication methods, not secrets.
            "TCP_AUTH=sys\nAUTH=peercred\n",
            "auth: none\nproxy_auth = kerberos-negotiate\n",
            "<password>${env.MAVEN_PASSWORD}</password>\n",
            "token:\n  path: /x\n",
            "use_token = true\n",
            "curl -H \"Authorization: Bearer $TOKEN\" x\n",
            "[credential \"https://source.developers.google.com\"]\n\thelper = gcloud.sh\n",
            "cert = /etc/ssl/certs/ca-certificates.crt\n",
        ] {
            assert_eq!(examine(clean, Shape::Text), Verdict::Clean, "{clean}");
        }
    }

    #[test]
    fn masks_what_cannot_be_redacted() {
        let netrc = "machine h login u password p\n";
        assert!(matches!(examine(netrc, Shape::Netrc), Verdict::Mask { .. }));
        assert_eq!(examine("machine h login u\n", Shape::Netrc), Verdict::Clean);
        assert!(matches!(
            examine("-----BEGIN RSA PRIVATE KEY-----\nx\n", Shape::Text),
            Verdict::Mask { .. }
        ));
        assert!(matches!(examine("x", Shape::Secret), Verdict::Mask { .. }));
    }

    #[test]
    fn hits_never_show_the_value() {
        let v = examine("password = hunter2-hunter2\n", Shape::Text);
        assert_eq!(v.hits().len(), 1);
        assert!(!v.hits()[0].shown.contains("hunter2-"));
        assert_eq!(v.hits()[0].line, 1);
    }
}
