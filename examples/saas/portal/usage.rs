//! Usage for the portal: days, dates and the SVG bar charts. The numbers come from the
//! credit ledger's billing history (`apiauth::quota::UsageHistory`: per UTC day, tenant,
//! identity and route; in the database when the example has one).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Days a chart shows.
pub const DAYS: u64 = 30;

/// The day number (days since the Unix epoch, UTC) of `t`.
pub fn day_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400
}

/// `YYYY-MM-DD` of a day number (civil-from-days, proleptic Gregorian).
pub fn date(day: u64) -> String {
    let z = i64::try_from(day).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A bar chart as an SVG document fragment: one bar per `(label, value)`. Every bar has a
/// `<title>` (a tooltip, and what a screen reader says). Labels are escaped.
pub fn bar_chart(id: &str, caption: &str, bars: &[(String, u64)]) -> String {
    const W: u64 = 640;
    const H: u64 = 180;
    const TOP: u64 = 20;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let total: u64 = bars.iter().map(|b| b.1).sum();
    let n = u64::try_from(bars.len()).unwrap_or(1).max(1);
    // Narrow bars for few values, so one route is not one wide block.
    let slot = (W / n).min(60);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg id="{id}" class="chart" role="img" aria-label="{}" data-total="{total}" viewBox="0 0 {W} {}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(caption),
        H + 40
    );
    let _ = write!(
        s,
        r##"<line x1="0" y1="{}" x2="{W}" y2="{}" stroke="#888"/>"##,
        H + TOP,
        H + TOP
    );
    let _ = write!(
        s,
        r##"<text x="0" y="12" font-size="12" fill="#444">max {max}</text>"##
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let i = u64::try_from(i).unwrap_or(0);
        let h = v * H / max;
        let x = i * slot + 2;
        let _ = write!(
            s,
            r##"<rect x="{x}" y="{}" width="{}" height="{h}" fill="#2b6cb0"><title>{}: {v}</title></rect>"##,
            H + TOP - h,
            slot.saturating_sub(4).max(1),
            escape(label)
        );
        // Every fifth label, so they do not overlap.
        if bars.len() <= 8 || i % 5 == 0 {
            let _ = write!(
                s,
                r##"<text x="{x}" y="{}" font-size="10" fill="#444">{}</text>"##,
                H + TOP + 14,
                escape(label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// `s` escaped for text and double-quoted attributes, by the page templates' escaper.
fn escape(s: &str) -> String {
    maud::html! { (s) }.into_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_of_day_numbers() {
        assert_eq!(super::date(0), "1970-01-01");
        assert_eq!(super::date(20_454), "2026-01-01");
    }

    #[test]
    fn chart_labels_are_escaped() {
        let svg = super::bar_chart("c", "x", &[("<script>\"".into(), 1)]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;&quot;"), "{svg}");
    }
}
