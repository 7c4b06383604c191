//! RFC 3339 UTC timestamps (`YYYY-MM-DDTHH:MM:SSZ`) from Unix seconds, for audit events.

/// Formats Unix seconds as an RFC 3339 UTC timestamp. Negative or huge inputs are clamped to
/// the years 1970..=9999 so the output always has the fixed shape.
pub fn format_utc(unix_seconds: i64) -> String {
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let secs = unix_seconds.clamp(0, MAX);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // Digits written directly rather than through `format!` (the audit line formats one per
    // decision, issue 12); every field is in range after the clamp, so the widths are fixed.
    let mut out = [0u8; 20];
    let fields = [
        (0, 4, y),
        (5, 2, m),
        (8, 2, d),
        (11, 2, rem / 3600),
        (14, 2, (rem % 3600) / 60),
        (17, 2, rem % 60),
    ];
    for (at, width, mut value) in fields {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    for (at, sep) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ] {
        out[at] = sep;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

// Howard Hinnant's days-to-civil algorithm, valid for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn known_instants() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_750_000_000), "2025-06-15T15:06:40Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(format_utc(-5), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(format_utc(86_399), "1970-01-01T23:59:59Z");
        assert_eq!(format_utc(1_000_000_000), "2001-09-09T01:46:40Z");
    }
}
