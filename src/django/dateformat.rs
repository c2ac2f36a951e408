//! `django.utils.dateformat.format` and the `|date` template filter
//! (`django/template/defaultfilters.py: date`) for an aware datetime, with the legacy settings
//! (`TIME_ZONE = "UTC"`, `USE_TZ = True`, `LANGUAGE_CODE = "en-us"`).

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::dates::{MONTHS, MONTHS_AP, WEEKDAYS, push_digits, write_isoformat};

/// `{{ value|date:format }}` before escaping: no format means `DATE_FORMAT`, and a named format
/// (`"SHORT_DATE_FORMAT"`…) is the en locale's. (A value that is not a datetime renders `""`;
/// the caller decides what is one.)
pub fn date_filter(value: &DateTime<Utc>, format: Option<&str>) -> String {
    let format = format.unwrap_or("DATE_FORMAT");
    self::format(value, named_format(format).unwrap_or(format))
}

/// The en locale's named formats (django/conf/locale/en/formats.py), which `|date` accepts
/// instead of a format string.
fn named_format(name: &str) -> Option<&'static str> {
    Some(match name {
        "DATE_FORMAT" => "N j, Y",
        "TIME_FORMAT" => "P",
        "DATETIME_FORMAT" => "N j, Y, P",
        "YEAR_MONTH_FORMAT" => "F Y",
        "MONTH_DAY_FORMAT" => "F j",
        "SHORT_DATE_FORMAT" => "m/d/Y",
        "SHORT_DATETIME_FORMAT" => "m/d/Y P",
        _ => return None,
    })
}

/// The characters `django.utils.dateformat.re_formatchars` recognises.
const FORMAT_CHARS: &str = "aAbcdDeEfFgGhHiIjlLmMnNoOPrsStTUuwWyYzZ";

/// `django.utils.dateformat.format(value, format_string)` for an aware datetime in UTC
/// (TIME_ZONE = "UTC", USE_TZ = True, LANGUAGE_CODE = "en-us").
pub fn format(dt: &DateTime<Utc>, format: &str) -> String {
    let mut out = String::with_capacity(32);
    // The literal piece since the last format character, as a byte range of `format`.
    let mut literal_start = 0;
    let mut previous = None;
    for (i, c) in format.char_indices() {
        // `(?<!\\)([chars])`: a format character not preceded by a backslash.
        if FORMAT_CHARS.contains(c) && previous != Some('\\') {
            unescape_literal(&format[literal_start..i], &mut out);
            literal_start = i + c.len_utf8();
            format_char(dt, c, &mut out);
        }
        previous = Some(c);
    }
    unescape_literal(&format[literal_start..], &mut out);
    out
}

/// `re_escaped.sub(r"\1", piece)` with `re_escaped = r"\\(.)"` (`.` does not match a newline).
fn unescape_literal(piece: &str, out: &mut String) {
    let mut chars = piece.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next)) if next != '\n' => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
}

fn format_char(dt: &DateTime<Utc>, c: char, out: &mut String) {
    use std::fmt::Write as _;
    let hour12 = match dt.hour() % 12 {
        0 => 12,
        h => h,
    };
    let month0 = dt.month0() as usize;
    let weekday0 = dt.weekday().num_days_from_monday() as usize;
    // `write!` into a String cannot fail.
    let _ = match c {
        'a' => write!(out, "{}", if dt.hour() > 11 { "p.m." } else { "a.m." }),
        'A' => write!(out, "{}", if dt.hour() > 11 { "PM" } else { "AM" }),
        'b' => write!(out, "{}", MONTHS[month0][..3].to_lowercase()),
        'c' => {
            write_isoformat(dt, out);
            Ok(())
        }
        'd' => write!(out, "{:02}", dt.day()),
        'D' => write!(out, "{}", &WEEKDAYS[weekday0][..3]),
        'e' | 'T' => write!(out, "UTC"),
        'E' | 'F' => write!(out, "{}", MONTHS[month0]),
        'f' => {
            if dt.minute() == 0 {
                write!(out, "{hour12}")
            } else {
                write!(out, "{hour12}:{:02}", dt.minute())
            }
        }
        'g' => write!(out, "{hour12}"),
        'G' => write!(out, "{}", dt.hour()),
        'h' => write!(out, "{hour12:02}"),
        'H' => {
            push_digits(out, dt.hour(), 2);
            Ok(())
        }
        'i' => {
            push_digits(out, dt.minute(), 2);
            Ok(())
        }
        'I' => write!(out, "0"),
        'j' => write!(out, "{}", dt.day()),
        'l' => write!(out, "{}", WEEKDAYS[weekday0]),
        'L' => write!(out, "{}", if is_leap(dt.year()) { "True" } else { "False" }),
        'm' => write!(out, "{:02}", dt.month()),
        'M' => write!(out, "{}", &MONTHS[month0][..3]),
        'n' => write!(out, "{}", dt.month()),
        'N' => write!(out, "{}", MONTHS_AP[month0]),
        'o' => write!(out, "{}", dt.iso_week().year()),
        'O' => write!(out, "+0000"),
        'P' => match (dt.hour(), dt.minute()) {
            (0, 0) => write!(out, "midnight"),
            (12, 0) => write!(out, "noon"),
            _ => {
                format_char(dt, 'f', out);
                out.push(' ');
                format_char(dt, 'a', out);
                Ok(())
            }
        },
        // email.utils.format_datetime(): "Thu, 21 Dec 2000 16:01:07 +0000".
        'r' => write!(
            out,
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
            &WEEKDAYS[weekday0][..3],
            dt.day(),
            &MONTHS[month0][..3],
            dt.year(),
            dt.hour(),
            dt.minute(),
            dt.second()
        ),
        's' => write!(out, "{:02}", dt.second()),
        'S' => write!(
            out,
            "{}",
            match dt.day() {
                11..=13 => "th",
                d if d % 10 == 1 => "st",
                d if d % 10 == 2 => "nd",
                d if d % 10 == 3 => "rd",
                _ => "th",
            }
        ),
        't' => write!(out, "{}", days_in_month(dt.year(), dt.month())),
        'u' => write!(out, "{:06}", dt.nanosecond() / 1000 % 1_000_000),
        // int(value.timestamp()) truncates toward zero.
        'U' => {
            let mut secs = dt.timestamp();
            if secs < 0 && dt.nanosecond() > 0 {
                secs += 1;
            }
            write!(out, "{secs}")
        }
        'w' => write!(out, "{}", dt.weekday().num_days_from_sunday()),
        'W' => write!(out, "{}", dt.iso_week().week()),
        'y' => write!(out, "{:02}", dt.year() % 100),
        'Y' => write!(out, "{:04}", dt.year()),
        'z' => write!(out, "{}", dt.ordinal()),
        'Z' => write!(out, "0"),
        _ => write!(out, "{c}"),
    };
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::django::dates::isoformat;

    fn utc(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("valid RFC 3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn formats_like_django() {
        let dt = utc("2026-11-24T04:36:42.485068+00:00");
        assert_eq!(isoformat(&dt), "2026-11-24T04:36:42.485068+00:00");
        assert_eq!(format(&dt, "c"), "2026-11-24T04:36:42.485068+00:00");
        assert_eq!(format(&dt, "H:i"), "04:36");
        let dt = utc("2026-01-02T13:00:05Z");
        assert_eq!(format(&dt, "c"), "2026-01-02T13:00:05+00:00");
        let dt = utc("2026-01-02T15:00:05.5+02:00");
        assert_eq!(format(&dt, "c"), "2026-01-02T13:00:05.500000+00:00");
        assert_eq!(
            format(&dt, r"D, d M Y \a\t P e O Z \\c"),
            r"Fri, 02 Jan 2026 at 1 p.m. UTC +0000 0 \c"
        );
    }

    #[test]
    fn literals_and_escapes() {
        let dt = utc("2026-01-02T15:04:05.000006+00:00");
        for (format_string, expected) in [
            ("", ""),
            ("c", "2026-01-02T15:04:05.000006+00:00"),
            ("H:i", "15:04"),
            (r"\H\i", "Hi"),
            (r"\\H", r"\H"),
            ("é H é", "é 15 é"),
            ("xHx", "x15x"),
            (r"\", r"\"),
            ("\\\n", "\\\n"),
        ] {
            assert_eq!(format(&dt, format_string), expected, "{format_string:?}");
        }
    }

    #[test]
    fn the_date_filter_reads_named_formats() {
        let dt = Utc
            .with_ymd_and_hms(2026, 11, 24, 0, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(date_filter(&dt, None), "Nov. 24, 2026");
        assert_eq!(date_filter(&dt, Some("P")), "midnight");
        assert_eq!(date_filter(&dt, Some("SHORT_DATE_FORMAT")), "11/24/2026");
        assert_eq!(
            date_filter(&dt, Some("DATETIME_FORMAT")),
            "Nov. 24, 2026, midnight"
        );
    }
}
