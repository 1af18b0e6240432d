//! The two HTML pages compiled into the binary — the chart page at `/` and
//! the live scoreboard at `/status` — and their Content-Security-Policies.
//!
//! Each page may run only its own inline `<script>` and `<style>`, named by
//! their SHA-256 (so an injected `<script>` does not run), fetch only from
//! this server, and load nothing from anywhere else. Editing a page's
//! `<script>` or `<style>` changes its hashes: the tests
//! `index_csp_hashes_match_the_page` and `status_csp_hashes_match_the_page`
//! fail and print the new ones.

use crate::http::Response;

/// The chart page served at `/`.
const INDEX_HTML: &str = include_str!("../web/index.html");

/// The chart page's policy (see the module documentation).
const INDEX_CSP: &str = "default-src 'none'; \
    script-src 'sha256-zqvqB8Bha4zsyQN/O8p4WHovzgl2zDN8x3qRvjVG5XY='; \
    style-src 'sha256-iJmIezfadys23W4C/0CNLL7iMLGobmXmTHVA//qBc/4='; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The live scoreboard page served at `/status`.
const STATUS_HTML: &str = include_str!("../web/status.html");

/// The scoreboard page's policy (see the module documentation); the page
/// sets text, never HTML.
const STATUS_CSP: &str = "default-src 'none'; \
    script-src 'sha256-511/1ps+3wBYpg4uFkB6fLScZADGfqOcf9jnjagdO1k='; \
    style-src 'sha256-hZtVlwFpoVeaor3Os9mzv//vUPUUlNjv/zHhSGy4moM='; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// `GET /`: the chart page.
pub(super) fn index_page() -> Response {
    html_page(INDEX_HTML, INDEX_CSP)
}

/// `GET /status`: the live scoreboard page.
pub(super) fn status_page() -> Response {
    html_page(STATUS_HTML, STATUS_CSP)
}

fn html_page(html: &'static str, csp: &'static str) -> Response {
    Response {
        status: 200,
        content_type: "text/html; charset=utf-8",
        // `frame-ancestors 'none'` in the policy, and the older header for
        // browsers that predate it: no other site may frame the page.
        headers: vec![
            ("Content-Security-Policy", csp.to_owned()),
            ("X-Frame-Options", "DENY".to_owned()),
        ],
        body: html.as_bytes().to_vec(),
        stream: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 (FIPS 180-4), for checking the pages' CSP hashes without a
    /// dependency.
    fn sha256(data: &[u8]) -> [u8; 32] {
        let mut h: [u32; 8] = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        let mut msg = data.to_vec();
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
        for block in msg.chunks(64) {
            compress(&mut h, block);
        }
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_mut(4).zip(h) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// SHA-256's compression function: folds one 64-byte block into `h`.
    #[allow(clippy::many_single_char_names)] // FIPS 180-4 names them a to h
    fn compress(h: &mut [u32; 8], block: &[u8]) {
        const K: [u32; 64] = [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
            0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
            0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
            0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
            0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
            0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
            0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
            0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
            0xc67178f2,
        ];
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }

    fn base64(data: &[u8]) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= chunk.len() {
                    char::from(ABC[(n >> (18 - 6 * i)) as usize & 63])
                } else {
                    '='
                });
            }
        }
        out
    }

    #[test]
    fn sha256_and_base64_match_known_answers() {
        assert_eq!(
            base64(&sha256(b"abc")),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(
            base64(&sha256(b"")),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        // Two blocks: the padding does not fit after 56 bytes of message.
        assert_eq!(
            base64(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "JI1qYdIGOLjlwCaTDD5gOaM85Flk/yFn9uzt1BnbBsE="
        );
    }

    /// The page's one inline `<tag>` element's text.
    fn inline(html: &'static str, tag: &str) -> &'static str {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        assert_eq!(html.matches(&open).count(), 1, "one {open}");
        let start = html.find(&open).expect("counted above") + open.len();
        let end = html[start..].find(&close).expect("closed") + start;
        &html[start..end]
    }

    /// Checks that `csp` allows exactly the page's inline script and style
    /// by hash, nothing inline otherwise, and nothing from elsewhere.
    fn assert_csp_matches(name: &str, html: &'static str, csp: &str) {
        for (tag, directive) in [("script", "script-src"), ("style", "style-src")] {
            let hash = base64(&sha256(inline(html, tag).as_bytes()));
            let wanted = format!("{directive} 'sha256-{hash}'");
            assert!(
                csp.split("; ").any(|d| d.trim() == wanted),
                "{name} must say `{wanted}` (the page's <{tag}> changed)"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{name}: {csp}");
        // Nothing but the page itself: no host, scheme or wildcard sources.
        for word in csp.split_whitespace() {
            assert!(
                !word.contains("http") && !word.contains('*') && word != "data:",
                "{name}: {word}"
            );
        }
        // What the hashes do not cover is blocked: say so here, not in a
        // browser console.
        assert!(
            !html.contains(" style=\""),
            "{name}: inline style attributes are blocked"
        );
        for handler in [
            " onclick=",
            " onload=",
            " onchange=",
            " oninput=",
            " onsubmit=",
        ] {
            assert!(
                !html.contains(handler),
                "{name}: inline event handlers are blocked"
            );
        }
        assert!(
            !html.contains("innerHTML"),
            "{name}: text is set with textContent"
        );
    }

    #[test]
    fn index_csp_hashes_match_the_page() {
        assert_csp_matches("INDEX_CSP", INDEX_HTML, INDEX_CSP);
    }

    #[test]
    fn status_csp_hashes_match_the_page() {
        assert_csp_matches("STATUS_CSP", STATUS_HTML, STATUS_CSP);
    }

    #[test]
    fn pages_carry_their_own_policy() {
        for (page, csp) in [(index_page(), INDEX_CSP), (status_page(), STATUS_CSP)] {
            assert_eq!(page.status, 200);
            assert_eq!(page.content_type, "text/html; charset=utf-8");
            assert_eq!(
                page.headers,
                vec![
                    ("Content-Security-Policy", csp.to_owned()),
                    ("X-Frame-Options", "DENY".to_owned())
                ]
            );
            assert!(csp.ends_with("frame-ancestors 'none'"));
        }
    }
}
