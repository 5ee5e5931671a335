//! Reads criterion's results and prints the Markdown tables of docs/BENCHMARKS.md: medians
//! per group, and each target of the benchmark issue as a ratio from the same run.
//!
//! ```sh
//! cargo run -p apiauth-bench --bin bench-report -- [CRITERION_DIR]
//! ```
//! The directory defaults to `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const GROUPS: &[&str] = &[
    "api_key",
    "basic_cached",
    "bearer_opaque",
    "jwt_hs256",
    "jwt_es256",
    "jwt_rs256",
    "hmac_1kib",
    "introspection_cached",
    "dpop",
    "full_stack",
];

/// Median of each benchmark in nanoseconds, by group then id.
type Medians = BTreeMap<String, BTreeMap<String, f64>>;

fn median_ns(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path.join("new").join("estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("median")?.get("point_estimate")?.as_f64()
}

fn read(dir: &Path) -> Medians {
    let mut out = Medians::new();
    for group in GROUPS {
        let Ok(entries) = std::fs::read_dir(dir.join(group)) else {
            continue;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Some(m) = median_ns(&e.path()) {
                out.entry((*group).to_owned()).or_default().insert(id, m);
            }
        }
    }
    out
}

fn us(ns: f64) -> String {
    format!("{:.2}", ns / 1000.0)
}

fn main() -> ExitCode {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from)
                .join("criterion")
        });
    let m = read(&dir);
    if m.is_empty() {
        eprintln!("no criterion results under {}", dir.display());
        return ExitCode::FAILURE;
    }
    let get = |g: &str, id: &str| m.get(g).and_then(|x| x.get(id)).copied();

    println!("### Medians (µs per request; `floor` is the primitive alone)\n");
    println!("| group | benchmark | median µs | over bare µs |");
    println!("|---|---|---:|---:|");
    for (g, ids) in &m {
        let bare = ids.get("bare").copied();
        for (id, v) in ids {
            let over = match (bare, id.as_str()) {
                (_, "bare" | "floor") | (None, _) => String::new(),
                (Some(b), _) => us(v - b),
            };
            println!("| {g} | {id} | {} | {over} |", us(*v));
        }
    }

    println!("\n### Targets\n");
    println!("| target | measured | limit | met |");
    println!("|---|---:|---:|:---:|");
    let row = |name: String, measured: f64, limit: f64, unit: &str| {
        let met = if measured <= limit { "yes" } else { "**no**" };
        let (a, b) = if unit == "µs" {
            (us(measured), us(limit))
        } else {
            (format!("{measured:.2}"), format!("{limit:.2}"))
        };
        println!("| {name} | {a} {unit} | {b} {unit} | {met} |");
    };
    // Overhead over the bare handler ≤ 1.3 × floor + 1 µs.
    for (g, layer) in [
        ("api_key", "layer"),
        ("basic_cached", "layer"),
        ("bearer_opaque", "layer"),
        ("jwt_hs256", "layer"),
        ("jwt_es256", "layer"),
        ("jwt_rs256", "layer"),
        ("hmac_1kib", "layer"),
        ("introspection_cached", "layer"),
    ] {
        if let (Some(b), Some(l), Some(f)) = (get(g, "bare"), get(g, layer), get(g, "floor")) {
            row(
                format!("{g}: overhead ≤ 1.3 × floor + 1 µs (floor {} µs)", us(f)),
                l - b,
                1.3 * f + 1000.0,
                "µs",
            );
        }
    }
    // Issue 19: a DPoP request costs at most its proof's ES256 check, today's token cost and
    // 1 µs.
    if let (Some(b), Some(t), Some(l), Some(f)) = (
        get("dpop", "bare"),
        get("dpop", "token"),
        get("dpop", "layer"),
        get("dpop", "floor"),
    ) {
        row(
            format!(
                "dpop: overhead ≤ proof floor + token overhead + 1 µs (floor {} µs, token {} µs)",
                us(f),
                us(t - b)
            ),
            l - b,
            f + (t - b) + 1000.0,
            "µs",
        );
    }
    if let (Some(b), Some(l)) = (get("api_key", "bare"), get("api_key", "layer")) {
        row("api_key: overhead ≤ 1.5 µs".into(), l - b, 1500.0, "µs");
    }
    // Faster than every peer on the same token / signed request: layer / peer < 1.
    for g in ["jwt_hs256", "jwt_es256", "jwt_rs256", "hmac_1kib"] {
        let Some(ids) = m.get(g) else { continue };
        // Peers refuse a request without a credential; so does `layer_guarded`.
        let Some(l) = ids.get("layer_guarded").or_else(|| ids.get("layer")) else {
            continue;
        };
        for (id, p) in ids.iter().filter(|(id, _)| id.starts_with("peer_")) {
            row(format!("{g}: layer_guarded / {id}"), l / p, 1.0, "×");
        }
    }
    // Warm cache: ES256/RS256 overhead within 1.5 × the HS256 overhead (uncached HS256).
    if let (Some(hb), Some(hl)) = (get("jwt_hs256", "bare"), get("jwt_hs256", "layer")) {
        for g in ["jwt_es256", "jwt_rs256"] {
            if let (Some(b), Some(c)) = (get(g, "bare"), get(g, "layer_cached")) {
                row(
                    format!("{g}: cached overhead / hs256 overhead"),
                    (c - b) / (hl - hb),
                    1.5,
                    "×",
                );
            }
        }
    }
    ExitCode::SUCCESS
}
