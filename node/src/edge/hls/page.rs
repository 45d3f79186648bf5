//! The channel page: a video element played by hls.js (vendored under `node/assets/hls.js/`,
//! embedded in the binary, so a node needs no network to serve it), or by the browser's own
//! HLS where it has no Media Source Extensions.

/// The vendored hls.js release (`node/assets/hls.js/package.json` pins the same).
pub const HLS_JS_VERSION: &str = "1.7.4";
/// Where a node serves hls.js; the path names the version, so it can be cached for good.
pub const HLS_JS_PATH: &str = "/assets/hls.js/1.7.4/hls.min.js";
/// Where a node serves hls.js's licence.
pub const HLS_JS_LICENSE_PATH: &str = "/assets/hls.js/1.7.4/LICENSE";
/// hls.js's minified build, unmodified from the npm package.
pub const HLS_JS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/hls.js/hls.min.js"
));
/// hls.js's licence (Apache 2.0), unmodified from the npm package.
pub const HLS_JS_LICENSE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/hls.js/LICENSE"
));
/// Where a node serves the page's own script.
pub const PLAYER_JS_PATH: &str = "/assets/esm-player.js";
/// The page's own script: picks the player, starts it muted, shows state and errors.
pub const PLAYER_JS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/player/player.js"
));
/// `Content-Type` of the page.
pub const PAGE_TYPE: &str = "text/html; charset=utf-8";
/// `Content-Type` of a script.
pub const SCRIPT_TYPE: &str = "text/javascript; charset=utf-8";

const TEMPLATE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/player/index.html"
));

/// The page for `channel`, served at `/channels/CHANNEL/` (its playlists are relative to it).
pub fn page(channel: &str) -> String {
    TEMPLATE
        .replace("{{channel}}", &escape(channel))
        .replace("{{hls_js}}", HLS_JS_PATH)
        .replace("{{hls_js_version}}", HLS_JS_VERSION)
        .replace("{{hls_js_license}}", HLS_JS_LICENSE_PATH)
        .replace("{{player_js}}", PLAYER_JS_PATH)
}

/// `text` safe inside HTML text and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_channel_escaped_and_loads_both_scripts() {
        let page = page("tv<&>\"'");
        assert!(page.contains("<title>tv&lt;&amp;&gt;&quot;&#39; · esm</title>"));
        assert!(!page.contains("{{"), "a placeholder left: {page}");
        assert!(page.contains(r#"<script src="/assets/hls.js/1.7.4/hls.min.js"></script>"#));
        assert!(page.contains(r#"<script src="/assets/esm-player.js"></script>"#));
        assert!(page.contains("<video id=\"video\" muted autoplay playsinline controls>"));
    }

    #[test]
    fn the_vendored_hls_js_is_the_pinned_release_with_its_licence() {
        let manifest = |file: &str| {
            let path = format!("{}/assets/hls.js/{file}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(path).unwrap())
                .unwrap()
        };
        assert_eq!(
            manifest("package.json")["dependencies"]["hls.js"],
            HLS_JS_VERSION
        );
        assert_eq!(
            manifest("package-lock.json")["packages"]["node_modules/hls.js"]["version"],
            HLS_JS_VERSION
        );
        assert!(HLS_JS.contains(&format!("=\"{HLS_JS_VERSION}\"")));
        assert!(
            HLS_JS_PATH.contains(HLS_JS_VERSION) && HLS_JS_LICENSE_PATH.contains(HLS_JS_VERSION)
        );
        assert!(HLS_JS_LICENSE.contains("Apache License, Version 2.0"));
    }
}
