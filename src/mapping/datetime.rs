//! HL7 dates and times (DT, DTM, TS, TM) as FHIR `date`, `dateTime`,
//! `instant` and `time`.
//!
//! Owns the conversion rules: the precision written is kept (a year stays a
//! year); a time without seconds gets `:00` (FHIR needs seconds once a time
//! is given); fractions are kept; a time without an offset is read in the
//! channel's time zone (IANA, daylight saving included) and written with
//! the offset in force at that moment; `TS` values keep only their first
//! component. Anything else is an error that says what was expected.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// A parsed HL7 date/time, at the precision written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hl7Time {
    year: i16,
    month: Option<i8>,
    day: Option<i8>,
    hour: Option<i8>,
    minute: Option<i8>,
    second: Option<i8>,
    fraction: Option<String>,
    /// Offset in minutes east of UTC, when written.
    offset: Option<i32>,
}

fn two(s: &str, what: &str) -> Result<i8, String> {
    s.parse::<i8>()
        .map_err(|_| format!("{what} {s:?} is not a number"))
}

/// Parses `YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]`.
pub fn parse(text: &str) -> Result<Hl7Time, String> {
    let t = text.split('^').next().unwrap_or("").trim();
    // Real feeds sometimes send ISO 8601 (`1962-03-20`, `2024-03-05T09:30:00-05:00`)
    // or a space before the time (`20240305 0930`): read those as the DTM they mean.
    if let Some(dtm) = lenient(t) {
        return parse_strict(&dtm).map_err(|e| format!("{e} (read as {dtm:?})"));
    }
    parse_strict(t)
}

/// The HL7 DTM an ISO 8601 date/time or a DTM with a space before its time
/// stands for; `None` when the text is neither.
fn lenient(t: &str) -> Option<String> {
    let b = t.as_bytes();
    if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        let (date, rest) = t.split_at(10);
        let mut out: String = date.chars().filter(|c| *c != '-').collect();
        let rest = rest.strip_prefix(['T', ' ']).unwrap_or(rest);
        let (time, zone) = match rest.find(['Z', '+', '-']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        out.extend(time.chars().filter(|c| *c != ':'));
        match zone {
            "" => {}
            "Z" => out.push_str("+0000"),
            z => out.extend(z.chars().filter(|c| *c != ':')),
        }
        return Some(out);
    }
    if matches!(b.len(), 13 | 15) && b[8] == b' ' {
        return Some(t.replacen(' ', "", 1));
    }
    // ISO 8601 basic with its `T` (`20260516T130000`), or a space before
    // the offset (`20260516130000 +0100`): the DTM without them.
    let basic_t = b.len() > 9 && b[8] == b'T' && b[..8].iter().all(u8::is_ascii_digit);
    let spaced_zone = t.contains(" +") || t.contains(" -");
    if basic_t || spaced_zone {
        let mut n = if basic_t {
            format!("{}{}", &t[..8], &t[9..])
        } else {
            t.to_string()
        };
        n = n.replace(" +", "+").replace(" -", "-");
        return Some(lenient(&n).unwrap_or(n));
    }
    // A DTM with the offset in ISO style: `Z` for UTC, or hours only
    // (`-05`, as some v2.3 feeds write it).
    let digits_end = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    if digits_end >= 4 {
        let (main, zone) = t.split_at(digits_end);
        if zone == "Z" {
            return Some(format!("{main}+0000"));
        }
        let zb = zone.as_bytes();
        if zb.len() == 3 && matches!(zb[0], b'+' | b'-') && zb[1..].iter().all(u8::is_ascii_digit) {
            return Some(format!("{main}{zone}00"));
        }
        // An ISO-style offset on an HL7 DTM (`202401011230-05:00`).
        if zb.len() == 6
            && matches!(zb[0], b'+' | b'-')
            && zb[3] == b':'
            && [1, 2, 4, 5].iter().all(|&i| zb[i].is_ascii_digit())
        {
            return Some(format!("{main}{}{}", &zone[..3], &zone[4..]));
        }
    }
    None
}

fn parse_strict(t: &str) -> Result<Hl7Time, String> {
    let bad = || format!("{t:?} is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])");
    let (main, offset) = match t.find(['+', '-']) {
        Some(i) if i >= 4 => (&t[..i], Some(&t[i..])),
        _ => (t, None),
    };
    let (digits, fraction) = match main.split_once('.') {
        Some((d, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            (d, Some(f.to_string()))
        }
        Some(_) => return Err(bad()),
        None => (main, None),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(digits.len(), 4 | 6 | 8 | 10 | 12 | 14)
    {
        return Err(bad());
    }
    if fraction.is_some() && digits.len() != 14 {
        return Err(bad());
    }
    let part = |a: usize| digits.get(a..a + 2);
    let h = Hl7Time {
        year: digits[..4].parse().map_err(|_| bad())?,
        month: part(4).map(|s| two(s, "month")).transpose()?,
        day: part(6).map(|s| two(s, "day")).transpose()?,
        hour: part(8).map(|s| two(s, "hour")).transpose()?,
        minute: part(10).map(|s| two(s, "minute")).transpose()?,
        second: part(12).map(|s| two(s, "second")).transpose()?,
        fraction,
        offset: match offset {
            None => None,
            Some(o) => {
                let sign = if o.starts_with('-') { -1 } else { 1 };
                let d = &o[1..];
                if d.len() != 4 || !d.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{t:?}: the offset must be +ZZZZ or -ZZZZ"));
                }
                let hh: i32 = d[..2].parse().map_err(|_| bad())?;
                let mm: i32 = d[2..].parse().map_err(|_| bad())?;
                if hh > 14 || mm > 59 {
                    return Err(format!("{t:?}: offset out of range"));
                }
                Some(sign * (hh * 60 + mm))
            }
        },
    };
    // Validate the calendar fields. The year 0000 is none: FHIR's dates
    // start at 0001 (senders write `0000` for "unknown").
    if h.year == 0 {
        return Err(format!("{t:?} is not a calendar date (the year 0000)"));
    }
    let m = h.month.unwrap_or(1);
    let d = h.day.unwrap_or(1);
    jiff::civil::Date::new(h.year, m, d).map_err(|_| format!("{t:?} is not a calendar date"))?;
    if h.hour.unwrap_or(0) > 23 || h.minute.unwrap_or(0) > 59 || h.second.unwrap_or(0) > 59 {
        return Err(format!("{t:?} has a time out of range"));
    }
    Ok(h)
}

impl Hl7Time {
    /// FHIR `date`: the date part at its precision.
    pub fn date(&self) -> String {
        let mut s = String::with_capacity(32);
        self.write_date(&mut s, self.month, self.day);
        s
    }

    /// `YYYY[-MM[-DD]]` (written digit by digit: this runs for every date a
    /// message maps, and `format!` costs more than the rest of it).
    fn write_date(&self, s: &mut String, month: Option<i8>, day: Option<i8>) {
        digits(s, i64::from(self.year), 4);
        if let Some(m) = month {
            s.push('-');
            digits(s, i64::from(m), 2);
            if let Some(d) = day {
                s.push('-');
                digits(s, i64::from(d), 2);
            }
        }
    }

    /// True when a time of day is given.
    pub fn has_time(&self) -> bool {
        self.hour.is_some()
    }

    /// The civil date and time, missing parts at their start.
    fn civil(&self) -> Result<DateTime, jiff::Error> {
        DateTime::new(
            self.year,
            self.month.unwrap_or(1),
            self.day.unwrap_or(1),
            self.hour.unwrap_or(0),
            self.minute.unwrap_or(0),
            self.second.unwrap_or(0),
            0,
        )
    }

    fn offset_in(&self, tz: &TimeZone) -> i32 {
        if let Some(o) = self.offset {
            return o;
        }
        match self
            .civil()
            .ok()
            .and_then(|dt| dt.to_zoned(tz.clone()).ok())
        {
            Some(z) => z.offset().seconds() / 60,
            None => 0,
        }
    }

    fn time_part(&self, s: &mut String, tz: &TimeZone) {
        s.push('T');
        digits(s, i64::from(self.hour.unwrap_or(0)), 2);
        s.push(':');
        digits(s, i64::from(self.minute.unwrap_or(0)), 2);
        s.push(':');
        digits(s, i64::from(self.second.unwrap_or(0)), 2);
        if let Some(f) = &self.fraction {
            s.push('.');
            s.push_str(f);
        }
        let off = i64::from(self.offset_in(tz));
        if off == 0 {
            s.push_str("+00:00");
        } else {
            s.push(if off < 0 { '-' } else { '+' });
            digits(s, off.abs() / 60, 2);
            s.push(':');
            digits(s, off.abs() % 60, 2);
        }
    }

    /// FHIR `dateTime`: the precision written, with an offset once a time is given.
    pub fn date_time(&self, tz: &TimeZone) -> String {
        if !self.has_time() || self.day.is_none() {
            return self.date();
        }
        let mut s = String::with_capacity(32);
        self.write_date(&mut s, self.month, self.day);
        self.time_part(&mut s, tz);
        s
    }

    /// FHIR `instant`: a full date and time (missing parts are zero).
    pub fn instant(&self, tz: &TimeZone) -> String {
        let mut s = String::with_capacity(32);
        self.write_date(
            &mut s,
            Some(self.month.unwrap_or(1)),
            Some(self.day.unwrap_or(1)),
        );
        self.time_part(&mut s, tz);
        s
    }
}

/// `n` in at least `width` digits, zero-padded (a minus first when negative).
fn digits(s: &mut String, n: i64, width: usize) {
    if n < 0 {
        s.push('-');
    }
    let mut buf = [b'0'; 20];
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let len = (buf.len() - i).max(width).min(buf.len());
    for b in &buf[buf.len() - len..] {
        s.push(char::from(*b));
    }
}

impl Hl7Time {
    /// FHIR `instant` of this time plus some minutes (an appointment's end
    /// from its start and duration), in the offset of the start (the
    /// channel's time zone's rules when the value has none).
    pub fn instant_after(&self, minutes: i64, tz: &TimeZone) -> Result<String, String> {
        // A duration no appointment has (over about 1,900 years) is refused
        // before it reaches the calendar arithmetic.
        if !(-1_000_000_000..=1_000_000_000).contains(&minutes) {
            return Err(format!("{minutes} minutes is not a duration this can add"));
        }
        let start = self.civil().map_err(|e| e.to_string())?;
        let end = start
            .checked_add(jiff::SignedDuration::from_mins(minutes))
            .map_err(|e| format!("{minutes} minutes after the start: {e}"))?;
        let later = Hl7Time {
            year: end.year(),
            month: Some(end.month()),
            day: Some(end.day()),
            hour: Some(end.hour()),
            minute: Some(end.minute()),
            second: Some(end.second()),
            fraction: self.fraction.clone(),
            offset: self.offset,
        };
        Ok(later.instant(tz))
    }
}

/// A duration as HL7 writes one (TQ.3: `M30`, `H1`, `S90`, `D2`, `W1`; a
/// bare number is minutes) in whole minutes; `None` for `INDEF` or text.
pub fn minutes(text: &str) -> Option<i64> {
    let t = text.split('^').next().unwrap_or("").trim();
    let (unit, n) = match t.chars().next()? {
        c if c.is_ascii_alphabetic() => (c.to_ascii_uppercase(), &t[1..]),
        _ => ('M', t),
    };
    let n: f64 = n.trim().parse().ok()?;
    let per = match unit {
        'S' => 1.0 / 60.0,
        'M' => 1.0,
        'H' => 60.0,
        'D' => 1440.0,
        'W' => 10080.0,
        _ => return None,
    };
    let m = (n * per).round();
    (0.0..1e9).contains(&m).then_some(m as i64)
}

/// HL7 `TM` (`HH[MM[SS[.S]]]`) as FHIR `time` (`hh:mm:ss`).
pub fn time(text: &str) -> Result<String, String> {
    let t = text.split('^').next().unwrap_or("").trim();
    let core = t.split(['+', '-']).next().unwrap_or(t);
    let (digits, frac) = core.split_once('.').unwrap_or((core, ""));
    if !matches!(digits.len(), 2 | 4 | 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{t:?} is not an HL7 time (HH[MM[SS[.S]]])"));
    }
    let p = |a: usize| digits.get(a..a + 2).unwrap_or("00");
    let mut out = format!("{}:{}:{}", p(0), p(2), p(4));
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_and_spaced_values_from_real_feeds() {
        let utc = TimeZone::UTC;
        assert_eq!(parse("1962-03-20").unwrap().date(), "1962-03-20");
        // ISO 8601, a space before the time, and ISO-style zones on a DTM
        // (`Z`, hours only): each is the DTM it means.
        for (sent, want) in [
            ("2024-03-05T09:30:00-05:00", "2024-03-05T09:30:00-05:00"),
            ("2024-03-05T09:30:00Z", "2024-03-05T09:30:00+00:00"),
            ("20240305 0930", "2024-03-05T09:30:00+00:00"),
            ("20240305093000Z", "2024-03-05T09:30:00+00:00"),
            ("202403050930-05", "2024-03-05T09:30:00-05:00"),
            ("20240305093000.25+01", "2024-03-05T09:30:00.25+01:00"),
            ("20240305T093000", "2024-03-05T09:30:00+00:00"),
            ("20240305T0930-0500", "2024-03-05T09:30:00-05:00"),
            ("20240305093000 +0100", "2024-03-05T09:30:00+01:00"),
            ("20240305093000 -05", "2024-03-05T09:30:00-05:00"),
            ("202403050930-05:00", "2024-03-05T09:30:00-05:00"),
            ("20240305093000+05:30", "2024-03-05T09:30:00+05:30"),
        ] {
            assert_eq!(parse(sent).unwrap().date_time(&utc), want, "{sent}");
        }
        assert!(parse("202403050930-5").is_err());
        assert!(parse("202403050930-05x").is_err());
        assert!(parse("202403050930-05:0").is_err());
        assert!(parse("202403050930-0:500").is_err());
        let e = parse("1962-02-30").unwrap_err();
        assert!(e.contains("read as \"19620230\""), "{e}");
        assert!(parse("0").is_err());
    }

    #[test]
    fn ends_from_starts_and_durations() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let start = parse("202612011030").unwrap();
        assert_eq!(
            start.instant_after(30, &ny).unwrap(),
            "2026-12-01T11:00:00-05:00"
        );
        assert_eq!(
            parse("202612312330+0100")
                .unwrap()
                .instant_after(45, &ny)
                .unwrap(),
            "2027-01-01T00:15:00+01:00"
        );
        assert!(start.instant_after(i64::MAX, &ny).is_err());
        assert!(start.instant_after(2_000_000_000, &ny).is_err());
        assert_eq!(minutes("M30"), Some(30));
        assert_eq!(minutes("30"), Some(30));
        assert_eq!(minutes("H1.5"), Some(90));
        assert_eq!(minutes("S90"), Some(2));
        assert_eq!(minutes("D1"), Some(1440));
        assert_eq!(minutes("INDEF"), None);
        assert_eq!(minutes(""), None);
        assert_eq!(minutes("-5"), None);
    }

    #[test]
    fn precisions_and_zones() {
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(parse("1970").unwrap().date_time(&ny), "1970");
        assert_eq!(parse("197006").unwrap().date(), "1970-06");
        assert_eq!(parse("19700615").unwrap().date_time(&ny), "1970-06-15");
        assert_eq!(
            parse("197006151030").unwrap().date_time(&ny),
            "1970-06-15T10:30:00-04:00"
        );
        assert_eq!(
            parse("197001151030").unwrap().date_time(&ny),
            "1970-01-15T10:30:00-05:00"
        );
        assert_eq!(
            parse("20240501120000.1234+0215").unwrap().date_time(&ny),
            "2024-05-01T12:00:00.1234+02:15"
        );
        assert_eq!(
            parse("2024050112").unwrap().date_time(&TimeZone::UTC),
            "2024-05-01T12:00:00+00:00"
        );
        assert_eq!(
            parse("198908181126+0215^S").unwrap().instant(&ny),
            "1989-08-18T11:26:00+02:15"
        );
        assert_eq!(
            parse("20240501").unwrap().instant(&TimeZone::UTC),
            "2024-05-01T00:00:00+00:00"
        );
        assert_eq!(
            parse("19700615103000-0000").unwrap().date_time(&ny),
            "1970-06-15T10:30:00+00:00"
        );
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for bad in [
            "197",
            "19701",
            "20241301",
            "20240230",
            "2024050125",
            "abcd",
            "20240501+2",
            "20240501.5",
            "0000",
            "00000000",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(time("1030").unwrap(), "10:30:00");
        assert!(time("1").is_err());
    }
}
