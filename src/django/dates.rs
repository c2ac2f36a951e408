//! Python/Django datetime formats: `datetime.isoformat()` of an aware UTC datetime and
//! `django.utils.http.http_date` (RFC 7231 / RFC 5322 with `GMT`).

use std::fmt::Write;

use chrono::{DateTime, Datelike, SubsecRound, TimeZone, Timelike, Utc};

/// Python `datetime` has microsecond precision; Django stores and renders at most that.
pub fn truncate_to_micros(dt: &DateTime<Utc>) -> DateTime<Utc> {
    dt.trunc_subsecs(6)
}

/// `dt.isoformat()` for an aware UTC datetime: `2026-11-24T04:36:42.485068+00:00`, the
/// fraction omitted when the microseconds are zero (sub-microsecond digits are dropped, as
/// Python never has them). Years are zero-padded to four digits.
pub fn isoformat(dt: &DateTime<Utc>) -> String {
    let mut s = String::with_capacity(32);
    let _ = write!(
        s,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    // A leap second is shown by chrono as nanosecond >= 1e9; Python has no leap seconds.
    let micros = (dt.nanosecond() % 1_000_000_000) / 1_000;
    if micros != 0 {
        let _ = write!(s, ".{micros:06}");
    }
    s.push_str("+00:00");
    s
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `http_date(epoch_seconds)` = `email.utils.formatdate(epoch, usegmt=True)`:
/// `Wdy, DD Mon YYYY HH:MM:SS GMT` (English names, whatever the locale). Out-of-range times are
/// clamped to chrono's range.
pub fn http_date(unix: i64) -> String {
    let dt = Utc.timestamp_opt(unix, 0).single().unwrap_or(if unix < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[dt.weekday().num_days_from_monday() as usize],
        dt.day(),
        MONTHS[dt.month0() as usize],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isoformat_like_python() {
        let dt = Utc
            .timestamp_opt(1_795_495_002, 485_068_999)
            .single()
            .expect("valid");
        assert_eq!(isoformat(&dt), "2026-11-24T04:36:42.485068+00:00");
        assert_eq!(
            isoformat(&truncate_to_micros(&dt)),
            "2026-11-24T04:36:42.485068+00:00"
        );
        assert_eq!(truncate_to_micros(&dt).nanosecond(), 485_068_000);
        let whole = Utc.timestamp_opt(1_704_110_400, 0).single().expect("valid");
        assert_eq!(isoformat(&whole), "2024-01-01T12:00:00+00:00");
        let sub_micro = Utc
            .timestamp_opt(1_704_110_400, 999)
            .single()
            .expect("valid");
        assert_eq!(isoformat(&sub_micro), "2024-01-01T12:00:00+00:00");
        let ancient = Utc
            .with_ymd_and_hms(999, 1, 2, 3, 4, 5)
            .single()
            .expect("valid");
        assert_eq!(isoformat(&ancient), "0999-01-02T03:04:05+00:00");
        let micro1 = Utc.timestamp_opt(0, 1_000).single().expect("valid");
        assert_eq!(isoformat(&micro1), "1970-01-01T00:00:00.000001+00:00");
    }

    #[test]
    fn http_date_like_django() {
        // python -c 'from django.utils.http import http_date; print(http_date(...))'
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_796_704_836), "Tue, 08 Dec 2026 04:40:36 GMT");
        assert_eq!(http_date(1_704_110_400), "Mon, 01 Jan 2024 12:00:00 GMT");
        let _ = http_date(i64::MAX);
        let _ = http_date(i64::MIN);
    }
}
